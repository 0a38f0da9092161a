"""Redaction of credentials in URLs: the one helper for every URL a message prints.

A store URL may carry a password (``http://user:PW@host``) or a token in its query string
(``?token=...``). Anything shown to a person (logs, errors, summaries, JSON) goes through
:func:`redact_url`, so a secret given on the command line never reaches a terminal, a log
file or a saved summary.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_QUERY_KEYS", "redact_url"]

#: What a secret is replaced with.
REDACTED = "***"
#: Query parameters whose values are secrets.
SECRET_QUERY_KEYS = frozenset({"token", "password", "pass", "pwd", "secret", "key", "auth"})
# userinfo of anything that looks like scheme://user[:password]@host, even when the rest of
# the text is not a parsable URL (a mistyped scheme, a URL inside a longer message).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s?#]+)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>(?:^|[?&;\s])(?:"
    + "|".join(sorted(SECRET_QUERY_KEYS))
    + r")=)(?P<value>[^&#\s'\"]*)",
    re.IGNORECASE,
)


def redact_url(url: object) -> str:
    """Return ``url`` as text with its password and secret query values replaced by ``***``.

    Works on a URL or on any text containing one (an error message): a user name is kept,
    a password and the values of ``token=``, ``password=``... are not.

    Parameters
    ----------
    url : object
        A URL, path or message (``str()`` of it is used).

    Returns
    -------
    str

    Examples
    --------
    >>> redact_url("http://admin:hunter2@db:8086/?bucket=b&token=abc")
    'http://admin:***@db:8086/?bucket=b&token=***'
    """
    text = str(url)
    parts = None
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and parts.netloc and " " not in text:
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:{REDACTED}@{host}" if has_password else f"{REDACTED}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, REDACTED if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs],
                safe="*",
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return _redact_text(text)


def _redact_text(text: str) -> str:
    def userinfo(match: re.Match[str]) -> str:
        user, has_password, _ = match["userinfo"].partition(":")
        hidden = f"{user}:{REDACTED}" if has_password else REDACTED
        return f"{match['scheme']}{hidden}@"

    text = _USERINFO.sub(userinfo, text)
    return _QUERY_SECRET.sub(lambda m: m["key"] + REDACTED, text)
