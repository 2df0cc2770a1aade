"""existingSecret, and the optional resources: Ingress, HPA, PDB, ServiceMonitor, NetworkPolicy."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from conftest import ci_case


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
