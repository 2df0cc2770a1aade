"""TLS in the pod: tls.enabled mounts a kubernetes.io/tls Secret for [server.tls]."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from chart_helpers import HERALD_TOML, SCHEMA, VALUES, _check_config, _pod_environment
from conftest import Rendered, ci_case


# ---------------------------------------------------------------------------------------
# TLS in the pod
# ---------------------------------------------------------------------------------------

# Where the chart mounts tls.secretName (templates/_helpers.tpl, herald.tlsDir).
TLS_DIR = "/etc/herald-tls"
TLS_ON = {"tls": {"enabled": True, "secretName": "herald-tls"}}


def _tls_volumes(rendered: Rendered) -> list[dict[str, Any]]:
    return [v for v in rendered.pod_spec.get("volumes", []) if "secret" in v]


def _tls_case(renderer) -> Rendered:
    return ci_case(renderer, lambda v: v.get("tls", {}).get("enabled"))


def test_tls_is_off_by_default(case: Rendered) -> None:
    if case.values["tls"]["enabled"]:
        return
    assert "tls" not in case.herald_toml["server"]
    assert "[server.tls]" not in case.herald_toml_text
    assert _tls_volumes(case) == []
    assert all(m["mountPath"] != TLS_DIR for m in case.container["volumeMounts"])
    http = next(p for p in case.one("Service")["spec"]["ports"] if p["name"] == "http")
    assert "appProtocol" not in http
    assert "TLS:" not in case.notes


def test_tls_values_defaults_are_herald_defaults() -> None:
    herald = HERALD_TOML["server"]["tls"]
    assert VALUES["tls"] == {
        "enabled": False,
        "secretName": "",
        "reloadIntervalSecs": herald["reload_interval_secs"],
        "minVersion": herald["min_version"],
    }
    schema = SCHEMA["properties"]["tls"]
    assert schema["additionalProperties"] is False and set(schema["properties"]) == set(VALUES["tls"])
    assert schema["properties"]["minVersion"]["enum"] == ["1.2", "1.3"]
    interval = schema["properties"]["reloadIntervalSecs"]
    assert (interval["minimum"], interval["maximum"]) == (0, 86400), "Herald's bounds"


def test_tls_renders_server_tls_from_the_mounted_secret(renderer) -> None:
    case = _tls_case(renderer)
    tls = case.values["tls"]
    assert case.herald_toml["server"]["tls"] == {
        "cert_file": f"{TLS_DIR}/tls.crt",
        "key_file": f"{TLS_DIR}/tls.key",
        "reload_interval_secs": tls["reloadIntervalSecs"],
        "min_version": tls["minVersion"],
    }
    # The whole Secret, read-only, and never optional: the pod waits for it.
    (volume,) = _tls_volumes(case)
    assert volume == {
        "name": "tls",
        "secret": {"secretName": tls["secretName"], "defaultMode": 0o440, "optional": False},
    }
    mounts = {m["name"]: m for m in case.container["volumeMounts"]}
    assert mounts["tls"] == {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}, "no subPath: kept up to date"
    # Its own directory: not inside the config mount (nor the other way round).
    config_dir = mounts["config"]["mountPath"]
    assert not (TLS_DIR + "/").startswith(config_dir.rstrip("/") + "/")
    assert not (config_dir + "/").startswith(TLS_DIR + "/")
    # Mode 0440 (owner root): Herald (uid 65532) reads the files through the pod's fsGroup.
    pod_security = case.pod_spec["securityContext"]
    assert pod_security["fsGroup"] == case.container["securityContext"]["runAsGroup"]
    # A renewal must not roll the pods (Herald reloads the files itself): the only checksums
    # in the pod template are the chart's own config and Secret.
    annotations = case.deployment["spec"]["template"]["metadata"]["annotations"]
    assert {k for k in annotations if k.startswith("checksum/")} <= {"checksum/config", "checksum/secret"}
    assert tls["secretName"] not in yaml.safe_dump(annotations)
    # Probes stay on the plain-HTTP metrics port; the Service says the main port is TLS.
    assert case.container["readinessProbe"]["httpGet"]["port"] == "metrics"
    ports = {p["name"]: p for p in case.one("Service")["spec"]["ports"]}
    assert ports["http"]["appProtocol"] == "https" and ports["metrics"]["appProtocol"] == "http"
    assert f"certificate from Secret\n                      {tls['secretName']}" in case.notes
    assert "wss://" in case.notes


def test_tls_config_passes_herald_check_config(render, herald_bin: Path, tmp_path: Path) -> None:
    for tls in ({}, {"reloadIntervalSecs": 0, "minVersion": "1.3"}):
        rendered = render({"tls": {**TLS_ON["tls"], **tls}})
        # Herald does not read the certificate files for check-config: they are only in the pod.
        result = _check_config(herald_bin, rendered, tmp_path, _pod_environment(rendered))
        assert result.returncode == 0, f"{rendered.herald_toml_text}\n{result.stdout}{result.stderr}"
    # Herald reads that very table: a value it refuses there fails the check.
    broken = render(TLS_ON)
    text = broken.herald_toml_text.replace('min_version = "1.2"', 'min_version = "1.1"')
    assert text != broken.herald_toml_text
    path = tmp_path / "broken.toml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")} | _pod_environment(broken)
    result = subprocess.run([str(herald_bin), "check-config", str(path)], env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1 and "server.tls.min_version" in result.stderr, result.stderr


def test_tls_without_a_secret_name_is_refused(render) -> None:
    with pytest.raises(helm.HelmRenderError, match="tls.enabled=true needs tls.secretName"):
        render({"tls": {"enabled": True}})
    # Off, an empty name is fine (the default).
    assert _tls_volumes(render({"tls": {"enabled": False, "secretName": ""}})) == []


@pytest.mark.parametrize("tls", [{"cert_file": "/certs/tls.crt", "key_file": "/certs/tls.key"}, {}],
                         ids=["files", "empty-table"])
def test_tls_in_config_server_is_refused(render, tls: dict[str, Any]) -> None:
    """[server.tls] comes from the tls values only, so it cannot clash or name absent files."""
    for values in ({"config": {"server": {"tls": tls}}}, {"config": {"server": {"tls": tls}}, **TLS_ON}):
        with pytest.raises(helm.HelmRenderError, match="config.server.tls is not used by this chart"):
            render(values)


def test_tls_behind_an_ingress_needs_an_https_backend(render) -> None:
    ingress = {"enabled": True, "className": "nginx"}
    warned = render({**TLS_ON, "ingress": ingress}).notes
    assert "nginx.ingress.kubernetes.io/backend-protocol: HTTPS" in warned
    https = {**ingress, "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}}
    rendered = render({**TLS_ON, "ingress": https})
    assert "backend-protocol" not in rendered.notes
    assert rendered.one("Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    assert "backend-protocol" not in render({"ingress": ingress}).notes, "TLS at the ingress only"


@pytest.mark.parametrize(
    "tls,where",
    [
        ({"minVersion": "1.1"}, "minVersion"),
        ({"minVersion": 1.3}, "minVersion"),
        ({"reloadIntervalSecs": -1}, "reloadIntervalSecs"),
        ({"reloadIntervalSecs": 86401}, "reloadIntervalSecs"),
        ({"reloadIntervalSecs": "10"}, "reloadIntervalSecs"),
        ({"secretName": "Herald_TLS"}, "secretName"),
        ({"enabled": "yes"}, "enabled"),
        ({"certFile": "/tls.crt"}, "certFile"),
    ],
    ids=["version-1.1", "version-a-number", "interval-negative", "interval-high", "interval-a-string",
         "secret-not-a-name", "enabled-not-a-bool", "unknown-key"],
)
def test_tls_values_are_checked_by_the_schema(render, tls: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=where):
        render({"tls": {**TLS_ON["tls"], **tls}})
