"""The chart stays in step with Herald's configuration and its own docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chart_helpers import CRD_KINDS, HERALD_TOML, LATEST_KUBE, SCHEMA, VALUES, _check_config, _pod_environment
from conftest import CHART_DIR


# ---------------------------------------------------------------------------------------
# The chart stays in step with Herald's configuration and its own docs
# ---------------------------------------------------------------------------------------

# Deliberate differences from Herald's built-in defaults, each explained in values.yaml.
CHART_DEFAULT_OVERRIDES = {("log", "format"): "json"}
# herald.toml tables the chart writes from values of its own rather than from config.* (the
# schema knows them, so the chart can refuse them with a clear message).
SET_ELSEWHERE = {("server", "tls"): "tls"}
# config/herald.toml's app is the development app; Herald's defaults for a new app differ here.
NEW_APP_DEFAULTS = {"client_events": False}

# values.yaml keys whose value is a free-form Kubernetes object, documented as a whole.
FREE_FORM = {
    "podSecurityContext", "securityContext", "resources", "updateStrategy", "behavior",
    "readiness", "liveness", "startup", "annotations", "labels", "podAnnotations", "podLabels",
    "secretAnnotations", "nodeSelector", "affinity", "hosts", "limits",
}


def test_schema_knows_exactly_herald_config_keys() -> None:
    config = SCHEMA["properties"]["config"]["properties"]
    sections = {k for k in HERALD_TOML if k not in {"adapter", "apps"}}
    assert set(config) == sections
    for section in sections:
        assert set(config[section]["properties"]) == set(HERALD_TOML[section]), section
    app = SCHEMA["properties"]["apps"]["items"]["properties"]
    assert set(app) - {"secretKey"} == set(HERALD_TOML["apps"][0])
    assert set(app["limits"]["properties"]) == set(HERALD_TOML["apps"][0]["limits"])


def test_values_defaults_are_herald_defaults() -> None:
    assert set(VALUES["config"]) == {k for k in HERALD_TOML if k not in {"adapter", "apps"}}
    for section, keys in VALUES["config"].items():
        elsewhere = {key for (s, key) in SET_ELSEWHERE if s == section}
        assert set(keys) == set(HERALD_TOML[section]) - elsewhere, section
        for key in elsewhere:
            assert SET_ELSEWHERE[(section, key)] in VALUES, f"config.{section}.{key} comes from another value"
        for key, value in keys.items():
            expected = CHART_DEFAULT_OVERRIDES.get((section, key), HERALD_TOML[section][key])
            assert value == expected, f"config.{section}.{key}"
    (app,) = VALUES["apps"]
    for key, value in app.items():
        if key not in {"id", "key", "secret", "secretKey", "limits"}:
            assert value == NEW_APP_DEFAULTS.get(key, HERALD_TOML["apps"][0][key]), f"apps[0].{key}"


def _value_paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of values.yaml's settable values: scalars, lists and free-form objects."""
    paths = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in FREE_FORM:
            paths += _value_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def test_every_value_is_in_the_readme_tables() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    expected = [p for p in _value_paths(VALUES) if p != "apps"]
    expected += [f"apps[].{key}" for key in SCHEMA["properties"]["apps"]["items"]["properties"]]
    missing = [p for p in expected if p not in documented]
    assert not missing, f"values missing from the tables in helm/herald/README.md: {missing}"


def test_every_value_is_commented() -> None:
    """Each key has a comment above it (or on its line), or belongs to a commented object."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    keys = []  # (indent, key, commented) of the keys above the current line
    uncommented = []
    previous = ""
    for line in lines:
        match = re.match(r"^(\s*)(- )?(- )?([A-Za-z_][\w.\-/]*):", line)
        if match:
            indent = len(match.group(1)) + (2 if match.group(2) else 0)
            key = match.group(4)
            commented = "#" in line or previous.startswith("#") or previous.startswith("- #")
            while keys and keys[-1][0] >= indent:
                keys.pop()
            inherited = any(k in FREE_FORM and c for _, k, c in keys)
            if not (commented or inherited):
                uncommented.append(line.strip())
            keys.append((indent, key, commented))
        if line.strip():
            previous = line.strip()
    assert not uncommented, f"values.yaml keys without a comment: {uncommented}"


def _readme_yaml_examples() -> list[tuple[str, dict[str, Any]]]:
    """Every ```yaml block of the chart README that is a values file, with its section title."""
    readme = (CHART_DIR / "README.md").read_text()
    examples = []
    section = ""
    for block in re.finditer(r"^## ([^\n]+)$|^```yaml\n(.*?)^```", readme, re.M | re.S):
        if block.group(1):
            section = block.group(1)
        else:
            examples.append((section, yaml.safe_load(block.group(2))))
    return examples


README_EXAMPLES = _readme_yaml_examples()


@pytest.mark.parametrize("section,values", README_EXAMPLES, ids=[s for s, _ in README_EXAMPLES])
def test_readme_examples_render_and_pass_check_config(render, herald_bin: Path, tmp_path: Path, section, values) -> None:
    rendered = render(values, name=section)
    for manifest in rendered.manifests:
        if manifest["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(manifest, LATEST_KUBE, strict=True)
    result = _check_config(herald_bin, rendered, tmp_path, _pod_environment(rendered))
    assert result.returncode == 0, result.stderr


def test_readme_has_values_examples() -> None:
    sections = {section for section, _ in README_EXAMPLES}
    assert {"Exposing Herald", "Example: a Laravel app", "Scaling out"} <= sections
    scaling = [values for section, values in README_EXAMPLES if section == "Scaling out"]
    assert all(v["redis"]["enabled"] for v in scaling)
    assert any(v.get("replicaCount", 1) > 1 and v["redis"].get("existingSecret") for v in scaling)
    assert any(v["redis"].get("cluster") and v.get("autoscaling", {}).get("maxReplicas", 1) > 1 for v in scaling)
