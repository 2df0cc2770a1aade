"""The Helm chart in helm/herald, checked offline with Helm's own engine.

Lint and render go through helm-python-sdk (Helm's Go library); every rendered manifest is
validated against the Kubernetes JSON schemas (kubernetes-validate, strict); the rendered
herald.toml must pass `herald check-config`; and the operational properties the chart
promises (probes, drain timing, security, secrets, scaling out over Redis) are asserted
directly.
"""

from __future__ import annotations

import base64
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
# The chart stays in step with Herald's configuration and its own docs
# ---------------------------------------------------------------------------------------

SCHEMA = yaml.safe_load((CHART_DIR / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

# Deliberate differences from Herald's built-in defaults, each explained in values.yaml.
CHART_DEFAULT_OVERRIDES = {("log", "format"): "json"}
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
        assert set(keys) == set(HERALD_TOML[section]), section
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
