"""The chart with one replica and no shared bus, and with several over Redis."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from chart_helpers import (
    HERALD_TOML,
    LATEST_KUBE,
    REDIS_SETTINGS,
    REDIS_URL_ENV,
    SCHEMA,
    VALUES,
    _check_config,
    _pod_environment,
)
from conftest import Rendered

SHARED_BUS_MESSAGE = "needs a shared bus between Herald nodes"
# The chart's Secret key for redis.url (values.yaml, redis.url).
CHART_REDIS_KEY = "redis-url"


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
