"""Submit the train-to-serve pipeline to a Kubeflow Pipelines host or an Argo Workflows server.

Parameters are checked against the compiled pipeline (KFP) or WorkflowTemplate (Argo) before any
request, and converted to the types the pipeline declares. Tokens come from the environment
(KFP_TOKEN, ARGO_TOKEN) or a file, never from a flag, and are never printed or sent on a redirect.
Every request is bounded in time (30 s, or $MESHSERVE_REQUEST_TIMEOUT_S) and in the size of its
answer, TLS is verified (against this machine's CAs, or the private CA `--ca-file` names; `--insecure` skips
the check and says so), and what comes back is checked: a run or workflow without an id is an error, not
"submitted". An unreachable host, an untrusted certificate, a rejected token and an unknown parameter are
one-line errors.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.errors import InvalidInputError, PlatformError
from components.inputs import REQUEST_TIMEOUT_ENV, parse_json, read_bounded, seconds_from_env
from components.redaction import public_url, register_secret, scrub
from pipelines.compile import COMPILED_DIR

KFP_PIPELINE = COMPILED_DIR / "train_to_serve.kfp.yaml"
ARGO_TEMPLATE = "meshserve-train-to-serve"
ARGO_TEMPLATE_FILE = COMPILED_DIR / "train_to_serve.argo.yaml"
_KFP_TYPES = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str}
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
ANSWER_LIMIT = 4 << 20


@dataclass(frozen=True)
class Submitted:
    """What the server created: a run (KFP) or a workflow (Argo), and where to look at it."""

    kind: str
    name: str
    url: str


def read_token(env_name: str, token_file: str) -> str:
    """The bearer token from a file (when given) or the environment; '' when neither has one. A token holding a
    newline or another control character (it would inject a header) is refused."""
    if token_file:
        token, source = read_bounded(Path(token_file), "token_file", 64 << 10).strip(), "token_file"
    else:
        token, source = os.environ.get(env_name, "").strip(), env_name
    register_secret(token)
    if any(not character.isprintable() or character.isspace() for character in token):
        raise InvalidInputError(source, "the token holds a newline, a space or a control character",
                                "store the token alone, on one line")
    return token


def tls_context(ca_file: str = "", insecure: bool = False) -> ssl.SSLContext:
    """How the server's certificate is checked: against this machine's CAs, or only the CA in `ca_file` (a
    private CA, as most on-premises KFP and Argo servers have), or not at all with `insecure` (the command warns)."""
    if ca_file and insecure:
        raise InvalidInputError("insecure", "--insecure skips the check that --ca-file configures",
                                "pass --ca-file to trust a private CA, or --insecure alone")
    if insecure:
        return ssl._create_unverified_context()  # the user asked for it; the command warns
    if not ca_file:
        return ssl.create_default_context()
    text = read_bounded(Path(ca_file), "ca_file", 1 << 20)
    try:
        return ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError):
        raise InvalidInputError("ca_file", f"{ca_file} holds no PEM certificate",
                                "pass the CA's certificate in PEM form (-----BEGIN CERTIFICATE-----)") from None


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """NAME=VALUE pairs, as given with -p."""
    parameters = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise InvalidInputError("parameter", f"{pair!r} is not NAME=VALUE", "write -p NAME=VALUE")
        parameters[name] = value
    return parameters


def kfp_arguments(parameters: dict[str, str], pipeline_file: Path = KFP_PIPELINE) -> dict:
    """The run's arguments, typed as the compiled pipeline declares them; an unknown name, or a deployment the
    run would refuse, is an error."""
    declared = _kfp_declared(pipeline_file)
    arguments = {}
    for name, value in parameters.items():
        if name not in declared:
            raise InvalidInputError(name, "is not a parameter of the pipeline", f"use one of {', '.join(declared)}")
        arguments[name] = _typed(name, value, declared[name]["parameterType"])
    defaults = {name: int(entry["defaultValue"]) if entry["parameterType"] == "NUMBER_INTEGER" else
                entry.get("defaultValue") for name, entry in declared.items()}  # KFP writes integers as 10.0
    check_rollout_inputs(defaults | arguments)
    return arguments


def _kfp_declared(pipeline_file: Path = KFP_PIPELINE) -> dict:
    """The compiled pipeline's input parameters: name -> type and default."""
    spec = next(doc for doc in yaml.safe_load_all(pipeline_file.read_text()) if doc and "root" in doc)
    return spec["root"]["inputDefinitions"]["parameters"]


def _typed(name: str, value: str, parameter_type: str):
    if parameter_type == "BOOLEAN":
        if value.lower() not in ("true", "false"):
            raise InvalidInputError(name, f"{value!r} is not true or false", "pass true or false")
        return value.lower() == "true"
    if parameter_type in ("STRUCT", "LIST"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        shape = "object" if parameter_type == "STRUCT" else "list"
        if not isinstance(parsed, dict if parameter_type == "STRUCT" else list):
            raise InvalidInputError(name, f"{value!r} is not a JSON {shape}",
                                    "pass JSON, e.g. -p node_selector='{\"pool\": \"gpu\"}'")
        return parsed
    try:
        return _KFP_TYPES[parameter_type](value)
    except ValueError:
        raise InvalidInputError(name, f"{value!r} is not a {parameter_type.lower().replace('_', ' ')}",
                                "pass a value of that type") from None


_SPEC_INPUTS = ("namespace", "runtime", "router", "autoscaling", "min_replicas", "max_replicas", "scale_target",
                "scale_metric", "scale_target_source", "metric_selector", "cpu", "memory", "gpus", "node_selector",
                "tolerations",
                "service_account", "storage_secret", "storage_options", "runtime_options", "router_options")


def check_rollout_inputs(values: dict[str, Any]) -> None:
    """Refuse, before anything is submitted, a run whose deploy or analysis would refuse its inputs: a runtime,
    router and autoscaler that cannot work together, or a baseline copy the router cannot reach. `values` are the
    pipeline's inputs (defaults and arguments, by their KFP names)."""
    from components.deployment.spec import spec_from_mapping
    from components.gate.policy import policy_from_dict
    from components.platform.kubernetes.render import check_deployment
    from components.routing.registry import mesh_routes_for
    from components.runtimes.base import runtime_for
    from components.steps.deploy.core import cluster_spec_fields

    fields = cluster_spec_fields(model_format=values["framework"], **{key: values[key] for key in _SPEC_INPUTS})
    router = mesh_routes_for(fields["router"])
    spec = check_deployment(spec_from_mapping({  # a later run's deploy: a candidate beside a primary
        "name": values["name"], "version": "candidate", "primary_version": "primary" if router.side_by_side else "",
        "storage_uri": "pvc://models/m/v", "canary_percent": values["canary_percent"], **fields}))
    shared = runtime_for(spec.runtime).shared_routing
    if policy_from_dict(values["policy"]).analysis.baseline == "copy" and (shared or not router.side_by_side):
        raise InvalidInputError("policy", f"router {spec.router} with runtime {spec.runtime} cannot route a fresh copy "
                                "of the primary beside the canary, which the analysis measures by default",
                                "pass -p policy='{\"analysis\": {\"baseline\": \"primary\"}}'"
                                + ("" if shared else ", or route with istio or asm"))


def argo_parameters(parameters: dict[str, str], template_file: Path = ARGO_TEMPLATE_FILE) -> list[str]:
    """The workflow's NAME=VALUE parameters; an unknown name is an error."""
    defaults = {p["name"]: str(p.get("value", "")) for p in
                yaml.safe_load(template_file.read_text())["spec"]["arguments"]["parameters"]}
    for name in parameters:
        if name not in defaults:
            raise InvalidInputError(name, "is not a parameter of the WorkflowTemplate",
                                    f"use one of {', '.join(defaults)}")
    types = {name.replace("_", "-"): entry["parameterType"] for name, entry in _kfp_declared().items()}
    check_rollout_inputs({name.replace("-", "_"): _typed(name, value, types.get(name, "STRING"))
                          for name, value in (defaults | parameters).items()})
    return [f"{name}={value}" for name, value in parameters.items()]


def checked_host(field: str, host: str) -> str:
    """An http(s) URL with a host, without its trailing slash; anything else is a one-line error."""
    parts = urllib.parse.urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(field, f"{host!r} is not an http(s) URL", f"pass --{field} http(s)://HOST[:PORT]")
    return host.rstrip("/")


def check_host(url: str, token: str, what: str, tls: ssl.SSLContext | None = None) -> None:
    """One short request, so an unreachable host, an untrusted certificate or a rejected token is said at once."""
    _call("GET", url, token, what, tls=tls)


def _call(method: str, url: str, token: str, what: str, body: dict | None = None,
          tls: ssl.SSLContext | None = None) -> dict:
    """One JSON request, bounded in time and in the size of its answer. The token is never sent on a redirect
    (to any origin), and no error shows a header, an answer's body or a URL's credentials."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers=headers, method=method)
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=seconds_from_env(REQUEST_TIMEOUT_ENV) or 30.0,
                                    context=tls or ssl.create_default_context()) as response:
            raw = response.read(ANSWER_LIMIT + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise PlatformError("token", f"{what} refused the token ({exc.code})",
                                "set a valid token in the environment or --token-file") from None
        raise PlatformError("host", f"{what} answered {exc.code} to {method} {public_url(url)}",
                            "check the host URL and the server's logs") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = scrub(str(getattr(exc, "reason", exc)))[:160]
        if isinstance(getattr(exc, "reason", exc), ssl.SSLCertVerificationError):
            raise PlatformError("tls", f"{what} at {public_url(url)} presented a certificate this machine does not "
                                f"trust ({reason})", "pass --ca-file with the server's CA (or, knowingly, --insecure)"
                                ) from None
        raise PlatformError("host", f"cannot reach {what} at {public_url(url)} ({reason})",
                            "check the host URL and network") from None
    if len(raw) > ANSWER_LIMIT:
        raise PlatformError("host", f"{what} answered more than {ANSWER_LIMIT} bytes to {method} {public_url(url)}",
                            "check that the URL is the API server")
    try:
        answer = parse_json(raw.decode()) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        answer = None
    if not isinstance(answer, dict):
        raise PlatformError("host", f"{what} did not answer {method} {public_url(url)} with a JSON object",
                            "check that the URL is the API server, not a proxy or login page")
    return answer


def _named(answer: dict, path: tuple[str, ...], what: str) -> str:
    """The identifier at `path` in an answer; a missing or odd one means the server did not do what was asked."""
    value: object = answer
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise PlatformError("host", f"{what} answered without a valid {'.'.join(path)}; nothing is known to run",
                            "check the server's version and logs")
    return value


def submit_kfp(host: str, parameters: dict[str, str], experiment: str, token: str, service_account: str,
               run_name: str = "", tls: ssl.SSLContext | None = None) -> Submitted:
    """Create the experiment (if new) and a run of the compiled train-to-serve pipeline (KFP's v2beta1 API)."""
    arguments = kfp_arguments(parameters)
    host = checked_host("kfp", host)
    api = f"{host}/apis/v2beta1"
    check_host(f"{api}/healthz", token, "the KFP API", tls)
    experiment_id = _kfp_experiment(api, experiment, token, tls)
    pipeline, platform = (doc for doc in yaml.safe_load_all(KFP_PIPELINE.read_text()) if doc)
    run = _call("POST", f"{api}/runs", token, "the KFP API", tls=tls, body={
        "display_name": run_name or f"meshserve-train-to-serve {time.strftime('%Y-%m-%d %H-%M-%S')}",
        "experiment_id": experiment_id, "pipeline_spec": {"pipeline_spec": pipeline, "platform_spec": platform},
        "runtime_config": {"parameters": arguments}, "service_account": service_account})
    run_id = _named(run, ("run_id",), "the KFP API")
    return Submitted("run", run_id, f"{host}/#/runs/details/{run_id}")


def _kfp_experiment(api: str, name: str, token: str, tls: ssl.SSLContext | None) -> str:
    """The id of the experiment named `name`, created when there is none."""
    predicate = {"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]}
    query = urllib.parse.urlencode({"filter": json.dumps(predicate), "page_size": 1})
    found = _call("GET", f"{api}/experiments?{query}", token, "the KFP API", tls=tls).get("experiments") or []
    if isinstance(found, list) and found and isinstance(found[0], dict):
        return _named(found[0], ("experiment_id",), "the KFP API")
    created = _call("POST", f"{api}/experiments", token, "the KFP API", {"display_name": name}, tls)
    return _named(created, ("experiment_id",), "the KFP API")


def submit_argo(host: str, parameters: dict[str, str], namespace: str, token: str,
                tls: ssl.SSLContext | None = None) -> Submitted:
    """Submit a workflow from the meshserve-train-to-serve WorkflowTemplate (as `argo submit --from`)."""
    from components.deployment.spec import check_namespace

    check_namespace(namespace)
    pairs = argo_parameters(parameters)
    host = checked_host("argo", host)
    check_host(f"{host}/api/v1/info", token, "the Argo server", tls)
    workflow = _call("POST", f"{host}/api/v1/workflows/{namespace}/submit", token, "the Argo server", tls=tls,
                     body={
        "namespace": namespace, "resourceKind": "WorkflowTemplate", "resourceName": ARGO_TEMPLATE,
        "submitOptions": {"parameters": pairs}})
    name = _named(workflow, ("metadata", "name"), "the Argo server")
    return Submitted("workflow", name, f"{host}/workflows/{namespace}/{name}")
