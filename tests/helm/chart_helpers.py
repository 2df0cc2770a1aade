"""Constants and helpers shared by the chart's test files (test_*.py in this directory)."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import yaml

from conftest import CHART_DIR, REPO, Rendered

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest one the
# pinned kubernetes-validate ships schemas for.
CHART_META = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
MIN_KUBE = re.search(r"(\d+\.\d+)", CHART_META["kubeVersion"]).group(1)
LATEST_KUBE = kubernetes_validate.latest_version()
KUBE_VERSIONS = sorted({MIN_KUBE, ".".join(LATEST_KUBE.split(".")[:2])}, key=lambda v: tuple(map(int, v.split("."))))

# Kinds from CRDs, for which Kubernetes itself ships no schema.
CRD_KINDS = {"ServiceMonitor"}

HERALD_TOML = tomllib.loads((REPO / "config" / "herald.toml").read_text())

REDIS_URL_ENV = "HERALD_ADAPTER__REDIS_URL"
# values.yaml's redis.* settings and the [adapter] keys they become.
REDIS_SETTINGS = {
    "keyPrefix": "key_prefix",
    "leaseMs": "lease_ms",
    "heartbeatMs": "heartbeat_ms",
    "commandTimeoutMs": "command_timeout_ms",
    "busQueue": "bus_queue",
}

SCHEMA = yaml.safe_load((CHART_DIR / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

# What a Secret managed outside the chart (existingSecret, redis.existingSecret) would hold.
EXTERNAL_REDIS_URL = "redis://:external-password@redis.external.svc:6379/0"


def _pod_environment(case: Rendered) -> dict[str, str]:
    """The container's environment as Kubernetes would build it (secrets resolved)."""
    chart_secret = case.maybe("Secret")
    chart_secret_name = chart_secret["metadata"]["name"] if chart_secret else None
    data = case.secret_data()
    env: dict[str, str] = {}
    for item in case.container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["name"] == chart_secret_name:
            assert ref["key"] in data, f"{case.name}: {item['name']} refers to a key the chart's Secret lacks"
            env[item["name"]] = data[ref["key"]]
        elif item["name"] == REDIS_URL_ENV:
            env[item["name"]] = EXTERNAL_REDIS_URL
        else:
            # An app secret in existingSecret: any non-empty value will do.
            env[item["name"]] = f"external-secret-for-{ref['key']}"
    return env


def _check_config(herald_bin: Path, case: Rendered, tmp_path: Path, env: dict[str, str]):
    path = tmp_path / "herald.toml"
    path.write_text(case.herald_toml_text)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return subprocess.run(
        [str(herald_bin), "check-config", str(path)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
