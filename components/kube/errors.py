"""Kubernetes API failures as one-line errors that say what happened and what to do.

A 403 names the verb and resource the ServiceAccount lacks; a missing API names the operator that
installs it; an apply conflict names the field manager that owns the field; an unreachable server
says so. Anything else keeps the server's own message.
"""

from __future__ import annotations

import json
import re

from components.errors import PlatformError
from components.redaction import public_url, scrub

FIELD_MANAGER = "meshserve"
OPERATORS = {"serving.kserve.io": "install KServe", "networking.istio.io": "install Istio (or join the cluster to ASM)",
             "intel.com": "install the OpenVINO operator", "autoscaling": "use Kubernetes 1.23 or later"}


def forbidden(verb: str, resource: str, namespace: str, message: str) -> PlatformError:
    """The ServiceAccount lacks `verb` on `resource`."""
    where = f" in namespace {namespace}" if namespace else ""
    return PlatformError("rbac", f"forbidden: cannot {verb} {resource}{where} ({_reason(message)})",
                         "grant it to the steps' ServiceAccount (manifests/rbac)")


def api_not_served(api_version: str, kind: str) -> PlatformError:
    """The server does not serve `kind` in `api_version` (a missing CRD, or an older server)."""
    group = api_version.rpartition("/")[0]
    fix = OPERATORS.get(group, f"install the API that serves {api_version}")
    if group == "autoscaling":
        return PlatformError("cluster", f"the API server does not serve {api_version} {kind}", fix)
    plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
    return PlatformError("cluster", f"no {plural}.{group} ({api_version} {kind} is not served)", fix)


def conflict(kind: str, name: str, body) -> PlatformError:
    """Another field manager owns fields meshserve applies (from the 409's causes)."""
    causes = _status(body).get("details", {}).get("causes", [])
    managers = sorted({m for c in causes for m in re.findall(r'conflict with "([^"]+)"', c.get("message", ""))})
    fields = sorted({c["field"] for c in causes if c.get("field")})
    owned = f" {', '.join(fields)}" if fields else ""
    owner = ", ".join(managers) or "(unnamed)"
    return PlatformError("conflict", f"{kind} {name}:{owned} owned by field manager {owner}",
                         "leave these fields to meshserve, or change them there")


def refused(verb: str, kind: str, name: str, status: int, body) -> PlatformError:
    """Any other refusal, with the server's own message."""
    target = " ".join(part for part in (kind, name) if part)
    return PlatformError("cluster", f"the API server refused to {verb} {target} ({status}: {_reason(body)})",
                         "fix what the message names, then re-run")


def unreachable(server: str, detail: str) -> PlatformError:
    """The API server did not answer (its URL shown without credentials)."""
    return PlatformError("cluster", f"cannot reach the API server {public_url(server)} ({detail})",
                         "check --kubeconfig/--context and the server; re-running converges")


def garbled(server: str, verb: str, kind: str, problem: str) -> PlatformError:
    """The server answered, but not with a Kubernetes API object (an HTML page, a cut-off body)."""
    return PlatformError("cluster", f"the API server {public_url(server)} answered {verb} {kind} with something that "
                         f"is not an API object ({problem})", "check that the kubeconfig's server is the API server, "
                         "not a proxy or login page")


def transport_detail(exc: Exception) -> str:
    """What went wrong below HTTP: the certificate problem a TLS failure names, a timeout, a refused connection."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        cause = re.search(r"certificate verify failed: ([^(\)']+)", text)
        return f"TLS: the server's certificate was not trusted: {cause.group(1).strip() if cause else 'unverified'}"
    if "SSL" in type(reason).__name__ or "SSL" in text:
        return f"TLS: {scrub(text)[:160]}"
    if "timed out" in text.lower() or "Timeout" in type(reason).__name__:
        return "no answer in time"
    if "refused" in text.lower():
        return "connection refused"
    return type(reason).__name__


def _reason(body) -> str:
    return scrub(_status(body).get("message") or "no message in the answer")[:300]


def _status(body) -> dict:
    """The Status object of an API error's body ({} when it is not one)."""
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return {"message": str(body).splitlines()[0][:300]} if body else {}
    return status if isinstance(status, dict) else {}
