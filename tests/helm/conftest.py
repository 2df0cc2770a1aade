"""Shared fixtures: the chart rendered by Helm's own Go library (helm-python-sdk), offline.

Each "case" is the chart's defaults or one file of helm/herald/ci/, rendered once per run.
"""

from __future__ import annotations

import base64
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "herald"
CI_DIR = CHART_DIR / "ci"
CI_FILES = sorted(CI_DIR.glob("*.yaml"))
RELEASE = "herald"
NAMESPACE = "realtime"

# Helm's `fail` logs at INFO in lint mode; keep the library's warnings and errors only.
helm.enable_logging(logging.WARNING)


def load_values(path: Path | None) -> dict[str, Any] | None:
    """Values from a YAML file, as `helm -f FILE` would read them."""
    if path is None:
        return None
    return yaml.safe_load(path.read_text()) or {}


@dataclass
class Rendered:
    """One render of the chart: its manifests, parsed, plus the values that produced them."""

    name: str
    values: dict[str, Any]
    manifests: list[dict[str, Any]]
    notes: str
    sources: dict[str, str] = field(repr=False, default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"{self.name}: expected one {kind}, found {len(found)}"
        return found[0]

    def maybe(self, kind: str) -> dict[str, Any] | None:
        found = self.of_kind(kind)
        assert len(found) <= 1, f"{self.name}: more than one {kind}"
        return found[0] if found else None

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod_spec(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod_spec["containers"]
        assert len(containers) == 1
        return containers[0]

    @property
    def herald_toml_text(self) -> str:
        return self.one("ConfigMap")["data"]["herald.toml"]

    @property
    def herald_toml(self) -> dict[str, Any]:
        return tomllib.loads(self.herald_toml_text)

    def secret_data(self) -> dict[str, str]:
        """The chart-created Secret's data, decoded (empty when existingSecret is used)."""
        secret = self.maybe("Secret")
        if secret is None:
            return {}
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


class Renderer:
    """Renders the chart through the helm library (no helm binary, no cluster)."""

    def __init__(self) -> None:
        self.chart = helm.Chart.load(str(CHART_DIR))

    def render(self, values: dict[str, Any] | None, name: str = "custom") -> Rendered:
        sources = self.chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        manifests: list[dict[str, Any]] = []
        notes = ""
        for path, text in sorted(sources.items()):
            if path.endswith("NOTES.txt"):
                notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    manifests.append(doc)
        merged = self.chart.merge_values(values)
        return Rendered(name=name, values=merged, manifests=manifests, notes=notes, sources=sources)


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


CASES = ["defaults"] + [p.name for p in CI_FILES]


def case_values(case: str) -> dict[str, Any] | None:
    return None if case == "defaults" else load_values(CI_DIR / case)


_cache: dict[str, Rendered] = {}


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest, renderer: Renderer) -> Rendered:
    """The chart rendered with the defaults and with each ci/*.yaml file."""
    name = request.param
    if name not in _cache:
        _cache[name] = renderer.render(case_values(name), name=name)
    return _cache[name]


@pytest.fixture
def render(renderer: Renderer):
    return renderer.render


def ci_case(renderer: Renderer, predicate) -> Rendered:
    """The first ci/*.yaml case whose values satisfy `predicate` (fails if none does)."""
    for path in CI_FILES:
        values = load_values(path)
        if predicate(values):
            name = path.name
            if name not in _cache:
                _cache[name] = renderer.render(values, name=name)
            return _cache[name]
    pytest.fail("no ci/*.yaml file covers this case")


@pytest.fixture(scope="session")
def herald_bin() -> Path:
    path = Path(os.environ.get("HERALD_BIN", "target/debug/herald"))
    if not path.is_absolute():
        path = REPO / path
    if not os.access(path, os.X_OK):
        pytest.fail(f"herald binary not found at {path}: build it (cargo build) or set HERALD_BIN")
    return path
