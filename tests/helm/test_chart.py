"""The Helm chart in helm/herald, checked offline with Helm's own engine.

Lint and render go through helm-python-sdk (Helm's Go library); every rendered manifest is
validated against the Kubernetes JSON schemas (kubernetes-validate, strict); the rendered
herald.toml must pass `herald check-config`; and the operational properties the chart
promises (probes, drain timing, security, secrets, scaling out over Redis) are asserted
directly.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from conftest import CASES, CHART_DIR, CI_FILES, REPO, Rendered, case_values, ci_case, load_values

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest one the
# pinned kubernetes-validate ships schemas for.
CHART_META = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
MIN_KUBE = re.search(r"(\d+\.\d+)", CHART_META["kubeVersion"]).group(1)
LATEST_KUBE = kubernetes_validate.latest_version()
KUBE_VERSIONS = sorted({MIN_KUBE, ".".join(LATEST_KUBE.split(".")[:2])}, key=lambda v: tuple(map(int, v.split("."))))

# Kinds from CRDs, for which Kubernetes itself ships no schema.
CRD_KINDS = {"ServiceMonitor"}

# Herald waits up to this long for sockets to finish after the drain (src/server.rs).
SOCKET_CLOSE_WAIT_SECS = 5

HERALD_TOML = tomllib.loads((REPO / "config" / "herald.toml").read_text())

SHARED_BUS_MESSAGE = "needs a shared bus between Herald nodes"
REDIS_URL_ENV = "HERALD_ADAPTER__REDIS_URL"
# The chart's Secret key for redis.url (values.yaml, redis.url).
CHART_REDIS_KEY = "redis-url"
# values.yaml's redis.* settings and the [adapter] keys they become.
REDIS_SETTINGS = {
    "keyPrefix": "key_prefix",
    "leaseMs": "lease_ms",
    "heartbeatMs": "heartbeat_ms",
    "commandTimeoutMs": "command_timeout_ms",
    "busQueue": "bus_queue",
}


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


# ---------------------------------------------------------------------------------------
# One replica without a shared bus; several over Redis
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": 2},
        {"replicaCount": 5},
        {"autoscaling": {"enabled": True, "maxReplicas": 2}},
        {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}},
    ],
    ids=["replicas-2", "replicas-5", "hpa-max-2", "hpa-2-4"],
)
def test_several_replicas_without_a_bus_are_refused(render, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmRenderError, match=SHARED_BUS_MESSAGE):
        render(values)


def test_single_replica_and_hpa_with_max_one_render(render) -> None:
    assert render({"replicaCount": 1}).deployment["spec"]["replicas"] == 1
    hpa_case = render({"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 1}})
    assert "replicas" not in hpa_case.deployment["spec"], "the HPA owns the replica count"
    assert hpa_case.one("HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 1


REDIS_PASSWORD = "s3cret-redis-password"
REDIS_URL = f"redis://:{REDIS_PASSWORD}@redis-master.redis.svc:6379/0"
ONE_APP = [{"id": "a", "key": "k", "secret": "app-secret-0123456789"}]


def _redis_env(rendered: Rendered) -> dict[str, Any]:
    (item,) = [e for e in rendered.container["env"] if e["name"] == REDIS_URL_ENV]
    return item


def test_redis_url_comes_from_the_chart_secret(render) -> None:
    rendered = render({"redis": {"enabled": True, "url": REDIS_URL}, "apps": ONE_APP})
    assert rendered.herald_toml["adapter"]["driver"] == "redis"
    secret = rendered.one("Secret")
    ref = _redis_env(rendered)["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": CHART_REDIS_KEY}
    assert secret["data"][CHART_REDIS_KEY] == base64.b64encode(REDIS_URL.encode()).decode()
    assert "redis_url" not in rendered.herald_toml["adapter"]
    for configmap in rendered.of_kind("ConfigMap"):
        text = yaml.safe_dump(configmap)
        assert REDIS_PASSWORD not in text and "redis-master" not in text
    assert "Secret herald-apps, key redis-url" in rendered.notes


def test_redis_url_from_an_existing_secret(render) -> None:
    rendered = render(
        {"redis": {"enabled": True, "existingSecret": "redis-auth", "existingSecretKey": "url"}, "apps": ONE_APP}
    )
    ref = _redis_env(rendered)["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "redis-auth", "key": "url"}
    assert CHART_REDIS_KEY not in rendered.secret_data(), "the chart's Secret holds only app secrets"
    assert set(rendered.secret_data()) == {"a-secret"}
    assert "redis-auth" in rendered.notes


def test_redis_and_app_secrets_both_from_existing_secrets(render) -> None:
    values = {"existingSecret": "creds", "redis": {"enabled": True, "existingSecret": "creds"}}
    rendered = render(values)
    assert rendered.maybe("Secret") is None
    assert _redis_env(rendered)["valueFrom"]["secretKeyRef"] == {"name": "creds", "key": "redis-url"}


def test_redis_url_with_existing_app_secret_is_refused(render) -> None:
    # The chart creates no Secret then, and the URL must not go into the ConfigMap.
    values = {"existingSecret": "creds", "redis": {"enabled": True, "url": REDIS_URL}}
    with pytest.raises(helm.HelmRenderError, match="set redis.existingSecret to its name") as failure:
        render(values)
    assert REDIS_PASSWORD not in str(failure.value)


def test_redis_cluster_driver(render) -> None:
    seeds = "redis://:pw@redis-0.redis:6379, redis://:pw@redis-1.redis:6379,rediss://redis-2.redis:6380"
    rendered = render({"redis": {"enabled": True, "cluster": True, "url": seeds}, "replicaCount": 3})
    assert rendered.herald_toml["adapter"]["driver"] == "redis_cluster"
    assert rendered.secret_data()[CHART_REDIS_KEY] == seeds


def test_redis_settings_reach_the_adapter_section(render) -> None:
    settings = {"keyPrefix": "herald-eu", "leaseMs": 30000, "heartbeatMs": 5000, "commandTimeoutMs": 500,
                "busQueue": 1024}
    adapter = render({"redis": {"enabled": True, "url": REDIS_URL, **settings}}).herald_toml["adapter"]
    assert adapter == {"driver": "redis", **{REDIS_SETTINGS[k]: v for k, v in settings.items()}}


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": 3},
        {"autoscaling": {"enabled": True, "maxReplicas": 4}},
        {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}},
    ],
    ids=["replicas-3", "hpa-max-4", "hpa-2-4"],
)
def test_several_replicas_render_with_redis(render, values: dict[str, Any]) -> None:
    rendered = render({"redis": {"enabled": True, "url": REDIS_URL}, **values})
    if "replicaCount" in values:
        assert rendered.deployment["spec"]["replicas"] == values["replicaCount"]
        assert rendered.maybe("HorizontalPodAutoscaler") is None
    else:
        assert "replicas" not in rendered.deployment["spec"], "the HPA owns the replica count"
        spec = rendered.one("HorizontalPodAutoscaler")["spec"]
        assert spec["maxReplicas"] == values["autoscaling"]["maxReplicas"]
        assert spec["minReplicas"] == values["autoscaling"].get("minReplicas", 1)
    assert rendered.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    for manifest in rendered.manifests:
        kubernetes_validate.validate(manifest, LATEST_KUBE, strict=True)


@pytest.mark.parametrize(
    "redis,message",
    [
        ({}, "redis.enabled=true needs the Redis URL: set redis.url"),
        ({"url": ""}, "redis.enabled=true needs the Redis URL: set redis.url"),
        ({"url": REDIS_URL, "existingSecret": "redis-auth"}, "redis.url and redis.existingSecret .* are both set"),
        ({"url": "http://redis:6379"}, "redis.url must be redis://"),
        ({"url": "redis://a:6379,redis://b:6379"}, "only for a Redis Cluster \\(redis.cluster=true\\)"),
        ({"cluster": True, "url": "redis://a:6379,b:6379"}, "redis.url must be redis://"),
        ({"url": REDIS_URL, "heartbeatMs": 4000}, "redis.heartbeatMs=4000 must be at most a third of redis.leaseMs=10000"),
        ({"url": REDIS_URL, "leaseMs": 3000}, "redis.heartbeatMs=2000 must be at most a third of redis.leaseMs=3000"),
    ],
    ids=["no-url", "empty-url", "url-and-secret", "not-redis", "seeds-without-cluster", "bad-seed",
         "heartbeat-too-slow", "lease-too-short"],
)
def test_redis_misconfiguration_is_refused(render, redis: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render({"redis": {"enabled": True, **redis}})


@pytest.mark.parametrize(
    "redis,where",
    [
        ({"leaseMs": 999}, "leaseMs"),
        ({"leaseMs": 300001}, "leaseMs"),
        ({"heartbeatMs": 99}, "heartbeatMs"),
        ({"commandTimeoutMs": 49}, "commandTimeoutMs"),
        ({"busQueue": 15}, "busQueue"),
        ({"keyPrefix": ""}, "keyPrefix"),
        ({"keyPrefix": "herald{x}"}, "keyPrefix"),
        ({"existingSecretKey": "a/b"}, "existingSecretKey"),
        ({"sentinel": True}, "sentinel"),
    ],
    ids=["lease-low", "lease-high", "heartbeat-low", "timeout-low", "queue-low", "prefix-empty", "prefix-braces",
         "secret-key", "unknown-key"],
)
def test_redis_values_out_of_bounds_are_refused_by_the_schema(render, redis: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=where):
        render({"redis": {"enabled": True, "url": REDIS_URL, **redis}})


def test_redis_key_in_the_chart_secret_is_not_an_app_key(render) -> None:
    values = {"redis": {"enabled": True, "url": REDIS_URL}, "apps": [{"id": "a", "key": "k", "secretKey": "redis-url"}]}
    with pytest.raises(helm.HelmRenderError, match='secret key "redis-url" holds the Redis URL'):
        render(values)
    # Without Redis in the chart's Secret, the key is free for an app.
    assert "redis-url" in render({"apps": values["apps"]}).secret_data()


def test_redis_url_change_rolls_the_pods(render) -> None:
    def checksums(url: str) -> tuple[str, str]:
        rendered = render({"redis": {"enabled": True, "url": url}, "apps": ONE_APP})
        annotations = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/config"], annotations["checksum/secret"]

    config, secret = checksums(REDIS_URL)
    assert checksums(REDIS_URL) == (config, secret)
    new_config, new_secret = checksums(REDIS_URL.replace(REDIS_PASSWORD, "rotated"))
    assert new_config == config, "the URL is not in the config"
    assert new_secret != secret


def test_redis_config_passes_check_config_with_the_pod_environment(render, herald_bin: Path, tmp_path: Path) -> None:
    for cluster, url in ((False, REDIS_URL), (True, "redis://:pw@redis-0:6379,redis://:pw@redis-1:6379")):
        rendered = render({"redis": {"enabled": True, "cluster": cluster, "url": url}, "replicaCount": 3})
        env = _pod_environment(rendered)
        assert env[REDIS_URL_ENV] == url
        result = _check_config(herald_bin, rendered, tmp_path, env)
        assert result.returncode == 0, f"{rendered.herald_toml_text}\n{result.stdout}{result.stderr}"
        assert url not in result.stdout + result.stderr and "pw@" not in result.stdout + result.stderr
    # Herald reads the URL from exactly that variable: a bad value there is refused.
    result = _check_config(herald_bin, rendered, tmp_path, {**env, REDIS_URL_ENV: "http://redis:6379"})
    assert result.returncode == 1
    assert f"{REDIS_URL_ENV}: adapter.redis_url: must be redis://" in result.stderr


def test_redis_values_defaults_are_herald_defaults() -> None:
    redis = VALUES["redis"]
    assert redis["enabled"] is False and redis["cluster"] is False
    assert redis["url"] == "" and redis["existingSecret"] == ""
    assert redis["existingSecretKey"] == CHART_REDIS_KEY
    for value, key in REDIS_SETTINGS.items():
        assert redis[value] == HERALD_TOML["adapter"][key], f"redis.{value}"
    schema = SCHEMA["properties"]["redis"]["properties"]
    assert set(schema) == set(redis)
    bounds = {"leaseMs": (1000, 300000), "heartbeatMs": (100, 60000), "commandTimeoutMs": (50, 60000),
              "busQueue": (16, 10000000)}
    for value, (low, high) in bounds.items():
        assert (schema[value]["minimum"], schema[value]["maximum"]) == (low, high), value


# ---------------------------------------------------------------------------------------
# existingSecret
# ---------------------------------------------------------------------------------------


def test_existing_secret_is_used_and_no_secret_is_created(renderer) -> None:
    case = ci_case(renderer, lambda v: bool(v.get("existingSecret")))
    name = case.values["existingSecret"]
    assert case.maybe("Secret") is None
    refs = [e["valueFrom"]["secretKeyRef"] for e in case.container["env"] if e["name"].startswith("HERALD_APPS__")]
    assert len(refs) == len(case.values["apps"]) >= 1
    assert {r["name"] for r in refs} == {name}
    assert "checksum/secret" not in case.deployment["spec"]["template"]["metadata"]["annotations"]
    assert name in case.notes


def test_existing_secret_with_a_secret_in_values_is_refused(render) -> None:
    values = {"existingSecret": "creds", "apps": [{"id": "a", "key": "k", "secret": "oops"}]}
    with pytest.raises(helm.HelmRenderError, match="apps\\[0\\].secret is set but existingSecret"):
        render(values)


def test_generated_secret_is_random_and_strong(render) -> None:
    data = render(None).secret_data()
    assert len(data) == 1
    (secret,) = data.values()
    assert len(secret) >= 32 and secret.isalnum()


def test_apps_are_required(render) -> None:
    # Unless they come from the database (test_postgres_*): the chart's check, not the schema's.
    with pytest.raises(helm.HelmRenderError, match="at least one app is required"):
        render({"apps": []})


def test_unknown_herald_keys_are_refused_by_the_schema(render) -> None:
    with pytest.raises(helm.HelmValuesError, match="prot"):
        render({"config": {"server": {"prot": 7000}}})
    with pytest.raises(helm.HelmValuesError, match="max_events"):
        render({"apps": [{"id": "a", "key": "k", "limits": {"max_events": 1}}]})


# ---------------------------------------------------------------------------------------
# Ingress, HPA, PDB, ServiceMonitor, NetworkPolicy
# ---------------------------------------------------------------------------------------


def test_optional_resources_are_off_by_default(renderer) -> None:
    case = renderer.render(None, name="defaults")
    kinds = {m["kind"] for m in case.manifests}
    assert kinds == {"ServiceAccount", "Secret", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget"}


def test_default_pdb_never_blocks_a_drain(renderer) -> None:
    """On by default with maxUnavailable 1: one pod may always be evicted, even the only one."""
    case = renderer.render(None, name="defaults")
    spec = case.one("PodDisruptionBudget")["spec"]
    assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert "WARNING" not in case.notes


@pytest.mark.parametrize(
    "values",
    [
        {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": None}},
        {"podDisruptionBudget": {"maxUnavailable": 0}},
        {"podDisruptionBudget": {"minAvailable": 3, "maxUnavailable": None}, "replicaCount": 3,
         "redis": {"enabled": True, "url": "redis://redis:6379/0"}},
    ],
    ids=["min-1-of-1", "max-0", "min-3-of-3"],
)
def test_pdb_that_blocks_drains_is_warned_about(render, values: dict[str, Any]) -> None:
    assert "blocks every voluntary eviction" in render(values).notes.replace("\n", " ")


def test_pdb_can_be_switched_off(render) -> None:
    assert render({"podDisruptionBudget": {"enabled": False}}).maybe("PodDisruptionBudget") is None


def test_ingress_has_tls_and_websocket_friendly_timeouts(renderer) -> None:
    case = ci_case(renderer, lambda v: v.get("ingress", {}).get("enabled") and v["ingress"].get("tls"))
    ingress = case.one("Ingress")
    tls = ingress["spec"]["tls"]
    assert tls == [{"secretName": t["secretName"], "hosts": t["hosts"]} for t in case.values["ingress"]["tls"]]
    tls_hosts = {h for t in tls for h in t["hosts"]}
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls_hosts, "every host is served over TLS"
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["name"] == case.one("Service")["metadata"]["name"]
            assert path["backend"]["service"]["port"]["name"] == "http"
    annotations = ingress["metadata"]["annotations"]
    ws = case.herald_toml.get("websocket", {})
    idle = ws.get("activity_timeout_secs", 120) + ws.get("pong_timeout_secs", 30)
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > idle
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) > idle
    assert "wss://" in case.notes


def test_ingress_without_tls_has_none(render) -> None:
    ingress = render({"ingress": {"enabled": True}}).one("Ingress")
    assert "tls" not in ingress["spec"]


def test_annotation_set_to_null_is_dropped(render) -> None:
    values = {"ingress": {"enabled": True, "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": None}}}
    annotations = render(values).one("Ingress")["metadata"]["annotations"]
    assert "nginx.ingress.kubernetes.io/proxy-body-size" not in annotations
    assert "nginx.ingress.kubernetes.io/proxy-read-timeout" in annotations


def test_hpa_scales_down_slowly(renderer) -> None:
    case = ci_case(renderer, lambda v: v.get("autoscaling", {}).get("enabled"))
    hpa = case.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": case.deployment["metadata"]["name"],
    }
    down = hpa["spec"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    assert down["selectPolicy"] == "Min"
    for policy in down["policies"]:
        if policy["type"] == "Pods":
            assert policy["value"] == 1 and policy["periodSeconds"] >= 120
        else:
            assert policy["type"] == "Percent" and policy["value"] <= 25
    assert "replicas" not in case.deployment["spec"]


def test_pdb_and_servicemonitor_select_herald(renderer) -> None:
    case = ci_case(renderer, lambda v: v.get("podDisruptionBudget", {}).get("enabled"))
    pod_labels = case.deployment["spec"]["template"]["metadata"]["labels"]
    pdb = case.one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])

    case = ci_case(renderer, lambda v: v.get("serviceMonitor", {}).get("enabled"))
    monitor = case.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = case.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"].get("namespace", "realtime")]


def test_pdb_needs_exactly_one_bound(render) -> None:
    with pytest.raises(helm.HelmRenderError, match="exactly one of minAvailable and maxUnavailable"):
        render({"podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}})


def test_network_policy_admits_both_ports(renderer) -> None:
    case = ci_case(renderer, lambda v: v.get("networkPolicy", {}).get("enabled"))
    policy = case.one("NetworkPolicy")
    pod_labels = case.deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {"http", "metrics"}
    if "Egress" in policy["spec"]["policyTypes"]:
        dns = policy["spec"]["egress"][0]["ports"]
        assert {(p["port"], p["protocol"]) for p in dns} == {(53, "UDP"), (53, "TCP")}


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


# ---------------------------------------------------------------------------------------
# Grafana dashboard
# ---------------------------------------------------------------------------------------

DASHBOARD_FILE = CHART_DIR / "dashboards" / "herald.json"
# The label Grafana's dashboard sidecar looks for by default.
SIDECAR_LABEL = ("grafana_dashboard", "1")


def _dashboard_configmaps(rendered: Rendered) -> list[dict[str, Any]]:
    return [m for m in rendered.of_kind("ConfigMap") if "herald.json" in (m.get("data") or {})]


def test_dashboard_is_off_by_default(renderer) -> None:
    case = renderer.render(None, name="defaults")
    assert _dashboard_configmaps(case) == []
    assert [m["metadata"]["name"] for m in case.of_kind("ConfigMap")] == ["herald"]
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["dashboard"]
    assert defaults == {"enabled": False, "namespace": "", "labels": dict([SIDECAR_LABEL]), "annotations": {}}


def test_dashboard_configmap_holds_the_charts_file_for_the_sidecar(render) -> None:
    rendered = render({"dashboard": {"enabled": True}})
    (configmap,) = _dashboard_configmaps(rendered)
    meta = configmap["metadata"]
    assert meta["name"] == "herald-dashboard"
    assert meta["namespace"] == "realtime"
    assert "annotations" not in meta
    labels = meta["labels"]
    assert labels[SIDECAR_LABEL[0]] == SIDECAR_LABEL[1]
    standard = rendered.one("Service")["metadata"]["labels"]
    assert standard.items() <= labels.items(), "the chart's standard labels"
    text = configmap["data"]["herald.json"]
    assert text == DASHBOARD_FILE.read_text(), "the file byte for byte"
    dashboard = json.loads(text)
    assert (dashboard["uid"], dashboard["title"]) == ("herald", "Herald")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["multi"] and variables["instance"]["includeAll"]
    # The herald.toml ConfigMap is still there, and the Deployment does not mount the dashboard.
    assert {m["metadata"]["name"] for m in rendered.of_kind("ConfigMap")} == {"herald", "herald-dashboard"}
    volumes = rendered.pod_spec.get("volumes", [])
    assert all(v.get("configMap", {}).get("name") != "herald-dashboard" for v in volumes)
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(configmap, version, strict=True)
    # Under a ConfigMap's 1 MiB limit, with room to spare for kubectl's last-applied annotation.
    assert len(text.encode()) < 256 * 1024


def test_dashboard_labels_annotations_and_namespace(render) -> None:
    values = {
        "dashboard": {
            "enabled": True,
            "namespace": "monitoring",
            "labels": {"grafana_dashboard": "herald", "team": "realtime"},
            "annotations": {"grafana_folder": "Herald"},
        }
    }
    report = helm.lint(str(CHART_DIR), values, strict=True, kube_version=f"v{MIN_KUBE}.0")
    assert not [m for m in report["messages"] if m["severity"] >= 2] and not report["errors"], report
    (configmap,) = _dashboard_configmaps(render(values))
    meta = configmap["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["grafana_dashboard"] == "herald" and meta["labels"]["team"] == "realtime"
    assert meta["labels"]["app.kubernetes.io/instance"] == "herald"
    assert meta["annotations"] == {"grafana_folder": "Herald"}
    # The sidecar's label set to null (Helm merges maps, so {} would keep it): only the chart's.
    (bare,) = _dashboard_configmaps(render({"dashboard": {"enabled": True, "labels": {"grafana_dashboard": None}}}))
    assert SIDECAR_LABEL[0] not in bare["metadata"]["labels"]


def test_dashboard_name_follows_the_full_name(render) -> None:
    (configmap,) = _dashboard_configmaps(render({"fullnameOverride": "rt", "dashboard": {"enabled": True}}))
    assert configmap["metadata"]["name"] == "rt-dashboard"
    long = "x" * 63
    (configmap,) = _dashboard_configmaps(render({"fullnameOverride": long, "dashboard": {"enabled": True}}))
    assert len(configmap["metadata"]["name"]) <= 63


@pytest.mark.parametrize(
    "dashboard",
    [
        {"labels": {"grafana_dashboard": 1}},
        {"annotations": {"grafana_folder": True}},
        {"folder": "Herald"},
        {"enabled": "yes"},
    ],
    ids=["label-not-a-string", "annotation-not-a-string", "unknown-key", "enabled-not-a-bool"],
)
def test_dashboard_values_are_checked_by_the_schema(render, dashboard: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="dashboard"):
        render({"dashboard": {"enabled": True, **dashboard}})


# ---------------------------------------------------------------------------------------
# The chart stays in step with Herald's configuration and its own docs
# ---------------------------------------------------------------------------------------

SCHEMA = yaml.safe_load((CHART_DIR / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

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


DATABASE_URL_ENV = "HERALD_APP_STORE__DATABASE_URL"
POSTGRES = {"config": {"app_store": {"driver": "postgres"}}, "database": {"existingSecret": "pg", "existingSecretKey": "url"}}


def test_database_url_comes_from_an_existing_secret(render) -> None:
    rendered = render({**POSTGRES, "apps": []})
    assert rendered.herald_toml["app_store"]["driver"] == "postgres"
    (item,) = [e for e in rendered.container["env"] if e["name"] == DATABASE_URL_ENV]
    assert item["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "url"}
    assert "database_url" not in rendered.herald_toml["app_store"] or not rendered.herald_toml["app_store"]["database_url"]


def test_admin_token_comes_from_the_database_secret(render) -> None:
    rendered = render({**POSTGRES, "database": {**POSTGRES["database"], "adminTokenKey": "admin"}, "apps": []})
    (item,) = [e for e in rendered.container["env"] if e["name"] == "HERALD_APP_STORE__ADMIN_TOKEN"]
    assert item["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "admin"}
    with pytest.raises(helm.HelmValuesError):
        render({"config": {"app_store": {"admin_token": "in-the-configmap-0123"}}})


def test_postgres_config_passes_check_config_with_the_pod_environment(render, herald_bin: Path, tmp_path: Path) -> None:
    rendered = render({**POSTGRES, "apps": []})
    env = {**_pod_environment(rendered), DATABASE_URL_ENV: "postgres://herald:pw@db:5432/herald"}
    result = _check_config(herald_bin, rendered, tmp_path, env)
    assert result.returncode == 0, f"{rendered.herald_toml_text}\n{result.stdout}{result.stderr}"
    assert "pw@" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"config": {"app_store": {"driver": "postgres"}}}, "needs the database URL"),
        (
            {"config": {"app_store": {"driver": "postgres", "database_url": "postgres://u:secret@db/h"}}},
            "carries a password",
        ),
    ],
)
def test_postgres_misconfiguration_is_refused(render, values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message) as failure:
        render(values)
    assert "secret@" not in str(failure.value)


# ---------------------------------------------------------------------------------------
# Debug console (config.debug) and the admin token that guards it
# ---------------------------------------------------------------------------------------

ADMIN_TOKEN_ENV = "HERALD_APP_STORE__ADMIN_TOKEN"
DEBUG_SETTINGS = {"enabled": False, "max_events_per_second": 2000, "buffer_events": 4096, "payload_preview_bytes": 256}
# [debug]'s ranges (config/herald.toml), which values.schema.json repeats.
DEBUG_BOUNDS = {"max_events_per_second": (1, 100000), "buffer_events": (16, 1000000), "payload_preview_bytes": (0, 65536)}


def test_debug_values_reach_the_debug_section(render, herald_bin: Path, tmp_path: Path) -> None:
    rendered = render({"config": {"debug": DEBUG_SETTINGS}})
    assert rendered.herald_toml["debug"] == DEBUG_SETTINGS
    result = _check_config(herald_bin, rendered, tmp_path, _pod_environment(rendered))
    assert result.returncode == 0, f"{rendered.herald_toml_text}\n{result.stdout}{result.stderr}"


def test_debug_schema_bounds_are_herald_bounds(render, herald_bin: Path, tmp_path: Path) -> None:
    for end in (0, 1):
        debug = {key: bounds[end] for key, bounds in DEBUG_BOUNDS.items()}
        rendered = render({"config": {"debug": debug}})
        result = _check_config(herald_bin, rendered, tmp_path, _pod_environment(rendered))
        assert result.returncode == 0, f"{debug}: {result.stderr}"
    for key, (low, high) in DEBUG_BOUNDS.items():
        for value in (low - 1, high + 1):
            with pytest.raises(helm.HelmValuesError, match=key):
                render({"config": {"debug": {key: value}}})


@pytest.mark.parametrize(
    "debug,where",
    [({"enabled": "yes"}, "enabled"), ({"buffer_events": "1024"}, "buffer_events"), ({"max_consoles": 4}, "max_consoles")],
    ids=["enabled-not-a-bool", "buffer-a-string", "unknown-key"],
)
def test_debug_values_are_checked_by_the_schema(render, debug: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=where):
        render({"config": {"debug": debug}})


def test_admin_token_with_the_static_store_comes_from_the_secret(render) -> None:
    """The console without PostgreSQL: the token from database.existingSecret, and no database
    URL asked of that Secret (the static store has no database)."""
    rendered = render({"database": {"existingSecret": "herald-admin", "adminTokenKey": "token"}})
    assert rendered.herald_toml["app_store"]["driver"] == "static"
    store_env = [e for e in rendered.container["env"] if e["name"].startswith("HERALD_APP_STORE__")]
    assert store_env == [
        {"name": ADMIN_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": "herald-admin", "key": "token"}}}
    ]
    with pytest.raises(helm.HelmRenderError, match="adminTokenKey needs database.existingSecret"):
        render({"database": {"adminTokenKey": "token"}})


def test_admin_token_with_the_static_store_may_come_from_extra_env(render, herald_bin: Path, tmp_path: Path) -> None:
    """Any Secret works too, through extraEnv."""
    token = {"name": ADMIN_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": "herald-admin", "key": "token"}}}
    rendered = render({"extraEnv": [token]})
    assert rendered.herald_toml["app_store"]["driver"] == "static"
    assert [e for e in rendered.container["env"] if e["name"].startswith("HERALD_APP_STORE__")] == [token]
    assert not rendered.herald_toml["app_store"].get("admin_token")
    env = _pod_environment(rendered)
    result = _check_config(herald_bin, rendered, tmp_path, env)
    assert result.returncode == 0, f"{rendered.herald_toml_text}\n{result.stdout}{result.stderr}"
    # Herald reads the token from exactly that variable: one too short is refused.
    result = _check_config(herald_bin, rendered, tmp_path, {**env, ADMIN_TOKEN_ENV: "too-short"})
    assert result.returncode == 1
    assert "app_store.admin_token" in result.stderr
    assert "too-short" not in result.stdout + result.stderr
