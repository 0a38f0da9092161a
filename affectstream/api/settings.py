"""The service's one settings object, read from a TOML file and the environment.

Precedence (later wins): defaults, the TOML file (``--config`` or
``$AFFECTSTREAM_API_CONFIG``; keys at the top level or under ``[serve]``), environment
variables ``AFFECTSTREAM_API_<NAME>`` (e.g. ``AFFECTSTREAM_API_DATABASE_URL``), then explicit
overrides (the ``serve`` flags).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from affectstream.errors import ConfigError
from affectstream.store import default_store_path

ENV_PREFIX = "AFFECTSTREAM_API_"
ENV_CONFIG = "AFFECTSTREAM_API_CONFIG"


def default_database_url() -> str:
    """SQLite next to the default embedded store: ``$AFFECTSTREAM_HOME/service.sqlite``.

    Returns
    -------
    str
    """
    return f"sqlite:///{default_store_path().parent / 'service.sqlite'}"


class Settings(BaseModel):
    """Everything ``affectstream serve`` needs; immutable once built.

    Parameters
    ----------
    host, port : str, int
        Where to listen; loopback by default.
    database_url : str
        SQLAlchemy URL of the metadata database (SQLite by default, PostgreSQL later).
    store : str
        Time-series store path or URL (``open_store``); the default embedded store if empty.
    tls_certfile, tls_keyfile : str, optional
        Serve HTTPS with this certificate and key.
    insecure_public_bind : bool
        Allow a non-loopback bind without TLS (say so explicitly).
    cors_origins : list of str
        Origins allowed by CORS (none by default).
    bootstrap_admin_key : SecretStr, optional
        An API key for a first ``admin`` user, created at start-up when no admin exists.
    live_queue : int
        Messages buffered per live client before its oldest are dropped.
    live_max_drops : int
        Dropped messages after which a slow live client is disconnected.
    max_page : int
        Largest ``limit`` of a paginated or time-range read.
    rate_limit_per_minute : int
        Requests per minute per API key (0: unlimited).
    max_running_sessions : int
        Sessions this process runs at once (emulated ones cost CPU); more are refused (409).
    lsl_out : bool
        Publish every session this process runs as Lab Streaming Layer outlets (raw
        streams, features, estimates, events; needs ``affectstream[lsl]``).
    jwt_issuer, jwt_audience, jwt_jwks_url : str, optional
        Accept JWT bearer tokens signed by this issuer (``iss``) for this audience
        (``aud``), verified with the issuer's JWKS; ``sub`` names an existing user.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    database_url: str = Field(default_factory=default_database_url)
    store: str = ""
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    insecure_public_bind: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    bootstrap_admin_key: SecretStr | None = None
    live_queue: int = Field(1000, ge=1)
    live_max_drops: int = Field(10_000, ge=1)
    max_page: int = Field(10_000, ge=1)
    rate_limit_per_minute: int = Field(0, ge=0)
    max_running_sessions: int = Field(8, ge=0)
    lsl_out: bool = False
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None

    @property
    def tls(self) -> bool:
        """Whether both a certificate and a key are configured."""
        return bool(self.tls_certfile and self.tls_keyfile)

    def check_bind(self) -> None:
        """Refuse a non-loopback bind without TLS unless ``insecure_public_bind`` is set."""
        if is_loopback(self.host) or self.tls or self.insecure_public_bind:
            return
        raise ConfigError(
            f"Refusing to serve on {self.host!r} without TLS: bind 127.0.0.1 (the default), "
            "give --tls-certfile and --tls-keyfile, or pass --insecure-public-bind if a "
            "TLS-terminating proxy sits in front."
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``).

    Parameters
    ----------
    host : str

    Returns
    -------
    bool
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in Settings.model_fields.items():
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if info.annotation == list[str]:
            out[name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            out[name] = raw
    return out


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the service config {path}: {exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The service config {path} is not valid TOML: {exc}.") from exc
    table = data.get("serve", data)
    if not isinstance(table, dict):
        raise ConfigError(f"[serve] in {path} must be a table of settings.")
    return dict(table)


def load_settings(
    config: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from a TOML file, the environment and overrides.

    Parameters
    ----------
    config : path, optional
        TOML file; ``$AFFECTSTREAM_API_CONFIG`` when omitted; none if neither is set.
    env : mapping, optional
        Environment (``os.environ`` by default).
    **overrides
        Values that win over everything (``None`` values are ignored).

    Returns
    -------
    Settings
    """
    environ = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config if config is not None else environ.get(ENV_CONFIG)
    if path:
        values.update(_from_file(Path(path)))
    values.update(_from_env(environ))
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"Invalid service settings ({problems}); fix the config file, the "
            f"{ENV_PREFIX}* variables or the flags."
        ) from None
