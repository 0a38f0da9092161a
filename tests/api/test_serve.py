"""``affectstream serve``: settings, the bind check, tokens, hashed keys, the audit log."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from affectstream.api.settings import load_settings
from affectstream.errors import ConfigError
from tests.api.conftest import Server, World


def test_settings_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text('[serve]\nport = 9001\nstore = "/data/a"\ncors_origins = ["https://x"]\n')
    env = {"AFFECTSTREAM_API_STORE": "/data/b", "AFFECTSTREAM_API_LIVE_QUEUE": "7"}
    settings = load_settings(config, env=env, host="::1")
    assert settings.port == 9001  # file
    assert settings.store == "/data/b"  # env beats file
    assert settings.live_queue == 7
    assert settings.cors_origins == ["https://x"]
    assert settings.host == "::1"  # flag
    with pytest.raises(ConfigError, match="port"):
        load_settings(None, env={"AFFECTSTREAM_API_PORT": "not-a-port"})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_bind_needs_nothing(host: str) -> None:
    load_settings(None, env={}, host=host).check_bind()


def test_public_bind_needs_tls_or_explicit_flag() -> None:
    with pytest.raises(ConfigError, match="without TLS"):
        load_settings(None, env={}, host="0.0.0.0").check_bind()
    load_settings(None, env={}, host="0.0.0.0", insecure_public_bind=True).check_bind()
    load_settings(None, env={}, host="0.0.0.0", tls_certfile="c", tls_keyfile="k").check_bind()


def test_serve_refuses_public_bind_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AFFECTSTREAM_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "affectstream", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--insecure-public-bind" in result.stderr


def test_health_is_public_everything_else_needs_a_token(server: Server) -> None:
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    for path in ("/studies", "/audit", "/models"):
        response = httpx.get(server.url + path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    bad = httpx.get(server.url + "/studies", headers={"Authorization": "Bearer ask_0000_nope"})
    assert bad.status_code == 401


def test_failed_logins_are_audited_without_the_token(server: Server, admin: httpx.Client) -> None:
    secret = "ask_feedfeedfeed_this-is-not-a-valid-key-at-all"
    httpx.get(server.url + "/studies/999", headers={"Authorization": f"Bearer {secret}"})
    entries = admin.get("/audit", params={"action": "login_failed", "limit": 5}).json()["items"]
    assert any(e["resource"] == "/studies/999" for e in entries)
    assert all(secret not in e["detail"] for e in entries)
    assert secret not in server.log_tail()


def test_keys_are_stored_as_argon2_hashes_only(server: Server, world: World) -> None:
    database = server.home / "service.sqlite"
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT prefix, hash FROM api_keys").fetchall()
    stored = " ".join(h for _, h in rows)
    for key in world.keys.values():
        assert key not in stored
        prefix = key.split("_")[1]
        assert any(p == prefix and h.startswith("$argon2") for p, h in rows)


def test_audit_log_is_append_only_in_the_database(server: Server, admin: httpx.Client) -> None:
    admin.post("/studies", json={"name": "audited"})
    with sqlite3.connect(server.home / "service.sqlite") as connection:
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                connection.execute(statement)


def test_revoked_key_stops_working(server: Server, world: World, admin: httpx.Client) -> None:
    key = world.keys["viewer"]
    with server.client(key) as viewer:
        assert viewer.get("/studies").status_code == 200
        assert admin.delete(f"/keys/{key.split('_')[1]}").status_code == 204
        assert viewer.get("/studies").status_code == 401


def test_openapi_is_served(server: Server) -> None:
    schema = httpx.get(server.url + "/openapi.json").json()
    assert "/sessions/{session_id}/ingest" in schema["paths"]
    assert "/sessions/{session_id}/raw/{modality}" in schema["paths"]


def test_rate_limit_is_per_key_over_a_minute() -> None:
    from affectstream.api.deps import ServiceState

    settings = load_settings(None, env={}, rate_limit_per_minute=3)
    state = ServiceState(
        settings, None, None, None, None, None, None, None
    )  # only the limiter is used
    assert [state.rate_ok("a") for _ in range(4)] == [True, True, True, False]
    assert state.rate_ok("b")  # another key has its own budget
    unlimited = ServiceState(load_settings(None, env={}), None, None, None, None, None, None, None)
    assert all(unlimited.rate_ok("a") for _ in range(1000))
