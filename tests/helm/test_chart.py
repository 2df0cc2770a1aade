"""The Helm chart in helm/herald, checked offline with Helm's own engine.

Lint and render go through helm-python-sdk (Helm's Go library); every rendered manifest is
validated against the Kubernetes JSON schemas (kubernetes-validate, strict); the rendered
herald.toml must pass `herald check-config`; and the operational properties the chart
promises (probes, drain timing, security, secrets, scaling out over Redis) are asserted
directly.

The other test_*.py files here check the rest: Redis, secrets and optional resources, TLS,
the Grafana dashboard, values and docs, the app store and the debug console.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from chart_helpers import (
    CRD_KINDS,
    HERALD_TOML,
    KUBE_VERSIONS,
    LATEST_KUBE,
    MIN_KUBE,
    REDIS_SETTINGS,
    _check_config,
    _pod_environment,
)
from conftest import CASES, CHART_DIR, CI_FILES, REPO, Rendered, case_values, load_values

# Herald waits up to this long for sockets to finish after the drain (src/server.rs).
SOCKET_CLOSE_WAIT_SECS = 5


# ---------------------------------------------------------------------------------------
# Helm lint and Kubernetes schemas
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_name", CASES)
def test_chart_lints_clean(case_name: str) -> None:
    report = helm.lint(str(CHART_DIR), case_values(case_name), strict=True, kube_version=f"v{MIN_KUBE}.0")
    assert report["total_charts_linted"] == 1
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


def test_ci_files_cover_the_required_scenarios() -> None:
    values = {p.name: load_values(p) for p in CI_FILES}
    assert any(v == {} for v in values.values()), "a ci file with the defaults"
    assert any(v.get("ingress", {}).get("enabled") and v["ingress"].get("tls") for v in values.values())
    assert any(
        v.get("autoscaling", {}).get("enabled")
        and v.get("podDisruptionBudget", {}).get("enabled")
        and v.get("serviceMonitor", {}).get("enabled")
        for v in values.values()
    )
    assert any(v.get("existingSecret") for v in values.values())
    redis = [v for v in values.values() if v.get("redis", {}).get("enabled")]
    assert any(v["redis"].get("url") and v.get("autoscaling", {}).get("maxReplicas", 1) > 1 for v in redis)
    assert any(
        v["redis"].get("cluster") and v["redis"].get("existingSecret") and v.get("replicaCount", 1) > 1
        for v in redis
    )
    assert any(
        v.get("tls", {}).get("enabled") and v["tls"].get("secretName") and v.get("service", {}).get("type") == "LoadBalancer"
        for v in values.values()
    ), "TLS in the pod behind a LoadBalancer"


def test_every_manifest_validates_against_kubernetes_schemas(case: Rendered) -> None:
    kinds = set()
    for manifest in case.manifests:
        kinds.add(manifest["kind"])
        if manifest["kind"] in CRD_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                pytest.fail(f"{case.name}: {manifest['kind']} invalid for Kubernetes {version} at {where}: {e.message}")
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= kinds


def test_crd_kinds_are_only_the_expected_ones(case: Rendered) -> None:
    for manifest in case.manifests:
        try:
            kubernetes_validate.validate(manifest, LATEST_KUBE, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert manifest["kind"] in CRD_KINDS, f"no schema for {manifest['kind']}"


def test_every_manifest_is_labelled_and_named(case: Rendered) -> None:
    for manifest in case.manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "herald"
        assert labels["app.kubernetes.io/instance"] == "herald"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert manifest["metadata"]["name"].startswith("herald")


# ---------------------------------------------------------------------------------------
# Probes, ports, rollout and shutdown timing
# ---------------------------------------------------------------------------------------


def _container_port(case: Rendered, port: Any) -> int:
    if isinstance(port, int):
        return port
    by_name = {p["name"]: p["containerPort"] for p in case.container["ports"]}
    assert port in by_name, f"probe port {port!r} is not a container port"
    return by_name[port]


def test_probes_use_the_metrics_port_and_paths(case: Rendered) -> None:
    toml = case.herald_toml
    metrics_port = toml["metrics"]["port"]
    http_port = toml["server"]["port"]
    assert metrics_port != http_port
    container = case.container
    expected = {"readinessProbe": "/ready", "livenessProbe": "/health", "startupProbe": "/health"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert _container_port(case, get["port"]) == metrics_port, probe
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": http_port, "metrics": metrics_port}


def test_service_exposes_both_ports_to_the_pods(case: Rendered) -> None:
    service = case.one("Service")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"http", "metrics"}
    assert ports["http"]["targetPort"] == "http"
    assert ports["metrics"]["targetPort"] == "metrics"
    pod_labels = case.deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert case.deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_grace_period_exceeds_prestop_and_drain_window(case: Rendered) -> None:
    shutdown = case.herald_toml.get("shutdown", {})
    drain = shutdown.get("drain_secs", HERALD_TOML["shutdown"]["drain_secs"])
    ready_grace = shutdown.get("ready_grace_secs", HERALD_TOML["shutdown"]["ready_grace_secs"])
    pre_stop = case.container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 1
    window = pre_stop + ready_grace + drain + SOCKET_CLOSE_WAIT_SECS
    assert case.pod_spec["terminationGracePeriodSeconds"] > window


def test_grace_period_follows_a_longer_drain(render) -> None:
    rendered = render({"config": {"shutdown": {"drain_secs": 120, "ready_grace_secs": 10}}})
    assert rendered.pod_spec["terminationGracePeriodSeconds"] > 5 + 10 + 120 + SOCKET_CLOSE_WAIT_SECS


def test_explicit_grace_period_shorter_than_the_drain_is_refused(render) -> None:
    with pytest.raises(helm.HelmRenderError, match="terminationGracePeriodSeconds=20 must exceed the drain window"):
        render({"terminationGracePeriodSeconds": 20})


def test_rolling_update_keeps_a_ready_pod(case: Rendered) -> None:
    strategy = case.deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_config_changes_roll_the_pods(render) -> None:
    def checksum(rendered: Rendered) -> str:
        return rendered.deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = render({"apps": [{"id": "a", "key": "k", "secret": "s"}]})
    same = render({"apps": [{"id": "a", "key": "k", "secret": "s"}]})
    changed = render({"apps": [{"id": "a", "key": "k", "secret": "s"}], "config": {"log": {"level": "debug"}}})
    assert checksum(base) == checksum(same) != checksum(changed)


# ---------------------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------------------


def test_pods_run_non_root_with_a_read_only_root_filesystem(case: Rendered) -> None:
    pod = case.pod_spec["securityContext"]
    container = case.container["securityContext"]
    assert pod["runAsNonRoot"] is True and container["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0 and container["runAsUser"] != 0
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    assert not container["capabilities"].get("add")
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert case.pod_spec["automountServiceAccountToken"] is False
    resources = case.container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


def test_image_user_matches_the_pod_security_context(case: Rendered) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.M)
    assert users, "the Dockerfile sets a numeric USER"
    uid, gid = users[-1]
    assert int(uid) != 0
    assert case.pod_spec["securityContext"]["runAsUser"] == int(uid)
    assert case.pod_spec["securityContext"]["runAsGroup"] == int(gid or uid)
    assert re.search(r'^ENTRYPOINT \["herald"\]\s*$', dockerfile, re.M)
    assert re.search(r"^EXPOSE 6001 9601\s*$", dockerfile, re.M)


def _secret_values(case: Rendered) -> list[str]:
    from_values = [str(app["secret"]) for app in case.values["apps"] if app.get("secret")]
    return sorted(set(from_values) | set(case.secret_data().values()))


def test_no_secret_in_any_configmap(case: Rendered) -> None:
    for app in case.herald_toml["apps"]:
        assert "secret" not in app
    secrets = _secret_values(case)
    if not case.values.get("existingSecret"):
        assert secrets, "the chart's Secret holds every app's secret"
    for configmap in case.of_kind("ConfigMap"):
        text = yaml.safe_dump(configmap)
        for secret in secrets:
            assert secret not in text, f"{case.name}: a secret value is in ConfigMap {configmap['metadata']['name']}"


def test_each_app_secret_comes_from_the_secret(case: Rendered) -> None:
    env = {e["name"]: e for e in case.container.get("env", [])}
    secret_name = case.values.get("existingSecret") or case.one("Secret")["metadata"]["name"]
    data = case.secret_data()
    for index, app in enumerate(case.values["apps"]):
        ref = env[f"HERALD_APPS__{index}__SECRET"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret_name
        assert ref["key"] == (app.get("secretKey") or f"{app['id']}-secret")
        if not case.values.get("existingSecret"):
            assert data[ref["key"]], "non-empty secret"
            if app.get("secret"):
                assert data[ref["key"]] == app["secret"]


def test_defaults_never_use_herald_development_credentials(case: Rendered) -> None:
    for app in case.herald_toml["apps"]:
        assert app["key"] != "app-key"
    assert "app-secret" not in case.secret_data().values()


# ---------------------------------------------------------------------------------------
# The rendered herald.toml against the real binary
# ---------------------------------------------------------------------------------------

# _pod_environment and _check_config (chart_helpers.py) serve the other files too.


def test_rendered_config_passes_herald_check_config(case: Rendered, herald_bin: Path, tmp_path: Path) -> None:
    result = _check_config(herald_bin, case, tmp_path, _pod_environment(case))
    assert result.returncode == 0, f"{case.name}:\n{case.herald_toml_text}\n{result.stdout}{result.stderr}"
    assert f"OK ({len(case.values['apps'])} app(s))" in result.stdout


def test_rendered_config_needs_the_secret_environment(case: Rendered, herald_bin: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in _pod_environment(case).items() if not k.endswith("__SECRET")}
    result = _check_config(herald_bin, case, tmp_path, env)
    assert result.returncode == 1
    assert "apps[0].secret: must not be empty" in result.stderr


def test_rendered_config_keeps_herald_key_names(case: Rendered) -> None:
    toml = case.herald_toml
    for section, keys in toml.items():
        if section == "apps":
            for app in keys:
                assert set(app) <= set(HERALD_TOML["apps"][0]), app
                assert set(app.get("limits", {})) <= set(HERALD_TOML["apps"][0]["limits"])
        else:
            assert set(keys) <= set(HERALD_TOML[section]), section
            for key, value in keys.items():
                if isinstance(value, dict):
                    assert set(value) <= set(HERALD_TOML[section][key]), f"{section}.{key}"
    redis = case.values["redis"]
    if redis["enabled"]:
        expected = {"driver": "redis_cluster" if redis["cluster"] else "redis"}
        expected |= {key: redis[value] for value, key in REDIS_SETTINGS.items()}
        assert toml["adapter"] == expected, "every Redis setting but the URL"
    else:
        assert toml["adapter"] == {"driver": "local"}
