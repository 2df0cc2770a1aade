"""The app store in PostgreSQL, the debug console (config.debug) and the admin token that guards it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from chart_helpers import _check_config, _pod_environment


# ---------------------------------------------------------------------------------------
# The app store in PostgreSQL
# ---------------------------------------------------------------------------------------

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
