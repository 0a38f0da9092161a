"""Where an InfluxStore connects: URL forms, environment variables, the default spool.

:func:`normalize_url` turns any accepted store URL (``http(s)://``, ``influx://``...,
``user:password@`` included) into the HTTP base URL and its query options; the
``AFFECTSTREAM_INFLUX_*`` variables are the fallbacks :class:`~affectstream.store.influx.
InfluxStore` reads.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from affectstream.errors import ConfigError
from affectstream.redact import redact_url

ENV_URL = "AFFECTSTREAM_INFLUX_URL"
ENV_TOKEN = "AFFECTSTREAM_INFLUX_TOKEN"
ENV_ORG = "AFFECTSTREAM_INFLUX_ORG"
ENV_BUCKET = "AFFECTSTREAM_INFLUX_BUCKET"
ENV_SPOOL_DIR = "AFFECTSTREAM_SPOOL_DIR"

#: Store URL schemes this backend takes, and the HTTP scheme each stands for.
URL_SCHEMES = {
    "http": "http",
    "https": "https",
    "influx": "http",
    "influxdb": "http",
    "influx+http": "http",
    "influx+https": "https",
    "influxdb+https": "https",
}


def normalize_url(url: str) -> tuple[str, dict[str, str]]:
    """Return the HTTP base URL and the query options (bucket, org, token) of a store URL.

    Accepts ``http(s)://host:port`` and ``influx://``, ``influxdb://``, ``influx+http(s)://``
    forms; a query string may carry ``bucket``, ``org`` and ``token``.

    Parameters
    ----------
    url : str
        Store URL.

    Returns
    -------
    base_url : str
    options : dict of str to str
    """
    parts = urlsplit(url)
    scheme = URL_SCHEMES.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"InfluxDB URL {redact_url(url)!r} is not usable: expected http://host:port (or "
            f"https://, influx://) as the url argument or {ENV_URL}."
        )
    options = {
        k: v[-1] for k, v in parse_qs(parts.query).items() if k in ("bucket", "org", "token")
    }
    netloc = parts.netloc
    if "@" in netloc:
        # user:password@host becomes the 1.x token "user:password"; the base URL kept (and
        # shown in messages) never holds a credential.
        userinfo, _, netloc = netloc.rpartition("@")
        options.setdefault("token", unquote(userinfo))
    base = urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))
    return base, options


def is_loopback(url: str) -> bool:
    """Return True if ``url`` names a server on this machine (a loopback host).

    Parameters
    ----------
    url : str
        HTTP base URL.

    Returns
    -------
    bool
    """
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_spool_dir(url: str, bucket: str) -> Path:
    """Return the default spool directory for a server URL and bucket.

    ``$AFFECTSTREAM_SPOOL_DIR/<key>`` if that is set, else ``spool/<key>`` next to the
    embedded store (``$AFFECTSTREAM_HOME``, default ``~/.affectstream``); one ``<key>``
    per URL and bucket, so two servers never share a spool.

    Parameters
    ----------
    url : str
        Server base URL.
    bucket : str
        Bucket (database) name.

    Returns
    -------
    Path
    """
    from affectstream.store import default_store_path  # the package root, loaded first

    override = os.environ.get(ENV_SPOOL_DIR)
    # Next to the embedded store: one AFFECTSTREAM_HOME rule for both.
    root = Path(override).expanduser() if override else default_store_path().parent / "spool"
    key = hashlib.sha256(f"{url}\n{bucket}".encode()).hexdigest()[:16]
    return root / f"influx-{key}"
