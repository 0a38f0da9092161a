"""JWT bearer tokens from a configured issuer, verified against its JWKS served over HTTP.

The issuer is a fake in the sense that no OIDC server runs here: the test holds an RSA key,
publishes its public half as a JWKS on a loopback HTTP server, and signs tokens itself.
The service under test is the real ``affectstream serve``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from affectstream.api.serve_process import ServeProcess
from tests.api.conftest import Server

ISSUER = "https://issuer.example"
AUDIENCE = "affectstream"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    key = _rsa()
    folder = tmp_path_factory.mktemp("jwks")
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield key, f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="module")
def jwt_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: tuple[rsa.RSAPrivateKey, str]
) -> Iterator[Server]:
    env = {
        "AFFECTSTREAM_API_JWT_ISSUER": ISSUER,
        "AFFECTSTREAM_API_JWT_AUDIENCE": AUDIENCE,
        "AFFECTSTREAM_API_JWT_JWKS_URL": issuer[1],
    }
    with ServeProcess(home=tmp_path_factory.mktemp("jwt-home"), env=env) as srv:
        yield srv


def _token(key: rsa.RSAPrivateKey, sub: str, **claims: object) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": int(time.time()) + 300}
    body.update(claims)
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def test_jwt_users_get_their_role_and_studies(
    jwt_server: Server, issuer: tuple[rsa.RSAPrivateKey, str], tmp_path: Path
) -> None:
    key = issuer[0]
    with jwt_server.client(jwt_server.admin_key) as admin:
        mine = admin.post("/studies", json={"name": "alice's"}).json()["id"]
        other = admin.post("/studies", json={"name": "other"}).json()["id"]
        body = {"name": "alice", "role": "viewer", "studies": [mine]}
        assert admin.post("/users", json=body).status_code == 201

    def get(token: str, path: str = "/studies") -> httpx.Response:
        return httpx.get(jwt_server.url + path, headers={"Authorization": f"Bearer {token}"})

    ok = get(_token(key, "alice"))
    assert ok.status_code == 200
    assert [s["id"] for s in ok.json()["items"]] == [mine]
    assert get(_token(key, "alice"), f"/studies/{other}").status_code == 404
    assert get(_token(key, "alice"), "/audit").status_code == 403  # a viewer's token
    refused = {
        "expired": _token(key, "alice", exp=int(time.time()) - 10),
        "wrong issuer": _token(key, "alice", iss="https://evil.example"),
        "wrong audience": _token(key, "alice", aud="other-app"),
        "unknown user": _token(key, "mallory"),
        "other key": _token(_rsa(), "alice"),
    }
    for why, token in refused.items():
        assert get(token).status_code == 401, why
