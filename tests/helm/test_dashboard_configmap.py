"""The Grafana dashboard ConfigMap (dashboard.enabled) for Grafana's sidecar."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from chart_helpers import KUBE_VERSIONS, MIN_KUBE
from conftest import CHART_DIR, Rendered


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
