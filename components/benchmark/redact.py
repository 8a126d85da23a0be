"""What a result, report or message may show of a target: no credentials.

A URL's user info and query values, and the value of every header not known to be safe, are replaced by
`<redacted:HASH>`: the first 12 hex digits of the value's sha256, so two loads with different secrets can
still be told apart without the secret being recoverable from a strong token.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SAFE_HEADERS = frozenset({"host", "model", "x-meshserve-track", "content-type", "accept", "accept-encoding",
                          "user-agent", "x-request-id", "mm-vmodel-id", "mm-model-id"})


def redacted(value: str) -> str:
    """The marker that stands for a secret value."""
    return f"<redacted:{hashlib.sha256(value.encode()).hexdigest()[:12]}>"


def public_url(url: str) -> str:
    """The URL with its user info and query values redacted (and no fragment); a gRPC host:port is kept."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{redacted(userinfo)}@{hostport}"
    query = "&".join(f"{key}={redacted(value)}" for key, value in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def public_headers(headers) -> dict[str, str]:
    """Header values as recorded: known-safe names as sent, every other value redacted."""
    return {name: value if name.lower() in SAFE_HEADERS else redacted(value) for name, value in headers}
