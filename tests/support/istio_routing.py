"""Which destinations a VirtualService sends a request to: Istio's HTTP route matching, for the tests.

Reduced to the match fields meshserve writes, with the semantics of Istio's TranslateRouteMatch and
Envoy's header matchers: rules are tried in order and the first that matches wins; a rule matches if
any one of its match entries does; within an entry the port, every `headers` condition, every
`withoutHeaders` condition and the `uri` must all hold. String matches are exact, prefix or RE2
regex over the whole value. The regex "*" (or an empty match) means "present"; a `withoutHeaders`
condition is inverted, and for any other match a missing header is treated as empty (Istio sets
treat_missing_header_as_empty there). Header names are case-insensitive. No rule matching: 404.
"""

from __future__ import annotations

import re


def destinations(virtual_service: dict, port: int, path: str, headers: dict[str, str]) -> list[tuple[str, int]] | None:
    """[(host, weight)] of the first matching rule, or None (Istio answers 404)."""
    headers = {name.lower(): value for name, value in headers.items()}
    for rule in virtual_service["spec"]["http"]:
        if any(_entry_matches(entry, port, path, headers) for entry in rule.get("match", [{}])):
            return [(r["destination"]["host"], r.get("weight", 100)) for r in rule["route"]]
    return None


def _entry_matches(entry: dict, port: int, path: str, headers: dict[str, str]) -> bool:
    unknown = set(entry) - {"port", "headers", "withoutHeaders", "uri"}
    if unknown:
        raise NotImplementedError(f"match fields not modelled here: {sorted(unknown)}")
    return (entry.get("port", port) == port
            and all(_header_holds(c, headers.get(name), False) for name, c in entry.get("headers", {}).items())
            and all(_header_holds(c, headers.get(name), True) for name, c in entry.get("withoutHeaders", {}).items())
            and ("uri" not in entry or _string_matches(entry["uri"], path)))


def _header_holds(condition: dict, value: str | None, inverted: bool) -> bool:
    if condition in ({}, {"regex": "*"}):  # present_match
        return (value is None) if inverted else (value is not None)
    if value is None:
        if not inverted:
            return False
        value = ""  # treat_missing_header_as_empty
    return _string_matches(condition, value) != inverted


def _string_matches(condition: dict, value: str) -> bool:
    if "exact" in condition:
        return value == condition["exact"]
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    return re.fullmatch(condition["regex"], value) is not None
