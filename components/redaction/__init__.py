"""The one redaction of what meshserve prints, logs or writes: no credentials, wherever they came from.

Two kinds of input reach an output:
- structured: a URL or a header list, redacted by shape (`public_url`, `public_headers`);
- free text: an error message, an exception's text, a server's error body (`scrub`). Every secret meshserve
  reads (a token, a kubeconfig's credentials, a storage key) is registered with `register_secret` as it is
  read, and `scrub` removes each registered value, then redacts by shape what it finds: URLs (user info,
  query, path parameters), `Authorization`/`Cookie` header lines and `Bearer` tokens.
A redacted value becomes `<redacted:HASH>`: the first 12 hex digits of its sha256, so two loads with
different secrets can still be told apart without the secret being recoverable from a strong token.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

SAFE_HEADERS = frozenset({"host", "model", "x-meshserve-track", "content-type", "accept", "accept-encoding",
                          "user-agent", "x-request-id", "mm-vmodel-id", "mm-model-id"})
_SHORTEST_SECRET = 4  # shorter values (a "1", an empty password) would scrub ordinary text
_registered: set[str] = set()
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>;,.:)\]]")  # no trailing punctuation
_CREDENTIAL_HEADER = re.compile(r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key|"
                                r"x-auth-token)(['\"]?\s*[:=]\s*['\"]?)([^'\"\r\n,}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{4,})")
_GRPC_USERINFO = re.compile(r"^(?P<userinfo>[^/@\s]+)@(?P<hostport>[^/@\s]+)$")


def redacted(value: str) -> str:
    """The marker that stands for a secret value."""
    return f"<redacted:{hashlib.sha256(value.encode()).hexdigest()[:12]}>"


def register_secret(value: str | bytes | None) -> None:
    """Remember a secret just read (a token, a password, a key), so that `scrub` removes it from any text."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    for part in {value or "", (value or "").strip()}:
        if len(part) >= _SHORTEST_SECRET:
            _registered.add(part)


def public_url(url: str) -> str:
    """The URL with its user info, query (keys and values) and path parameters redacted, and no fragment; a gRPC
    target keeps host:port and loses its user info."""
    if "://" not in url:
        found = _GRPC_USERINFO.match(url)
        return f"{redacted(found['userinfo'])}@{found['hostport']}" if found else url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{redacted(userinfo)}@{hostport}"
    path = "/".join(_without_parameters(segment) for segment in parts.path.split("/"))
    query = "&".join(_public_query_item(item) for item in parts.query.split("&") if item) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _without_parameters(segment: str) -> str:
    """A path segment with its `;name=value` parameters redacted (a session id travels there)."""
    name, semicolon, parameters = segment.partition(";")
    return f"{name};{redacted(parameters)}" if semicolon and parameters else segment


def _public_query_item(item: str) -> str:
    key, equals, value = item.partition("=")
    return f"{key}={redacted(value)}" if equals else redacted(key)


def public_headers(headers) -> dict[str, str]:
    """Header values as recorded: known-safe names as sent, every other value redacted."""
    return {name: value if name.lower() in SAFE_HEADERS else redacted(value) for name, value in headers}


def scrub(text: str) -> str:
    """Free text with every registered secret, URL credential, credential header and bearer token redacted."""
    for secret in sorted(_registered, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, redacted(secret))
    text = _URL_IN_TEXT.sub(lambda found: public_url(found.group(0)), text)
    text = _CREDENTIAL_HEADER.sub(lambda found: found.group(1) + found.group(2) + redacted(found.group(3)), text)
    return _BEARER.sub(lambda found: f"{found.group(1)} {redacted(found.group(2))}", text)
