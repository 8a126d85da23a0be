"""Submit the train-to-serve pipeline to a Kubeflow Pipelines host or an Argo Workflows server.

Parameters are checked against the compiled pipeline (KFP) or WorkflowTemplate (Argo) before any
request, and converted to the types the pipeline declares. Tokens come from the environment
(KFP_TOKEN, ARGO_TOKEN) or a file, never from a flag, and are never printed. An unreachable host, a
rejected token and an unknown parameter are one-line errors.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.errors import InvalidInputError, PlatformError
from pipelines.compile import COMPILED_DIR

KFP_PIPELINE = COMPILED_DIR / "train_to_serve.kfp.yaml"
ARGO_TEMPLATE = "meshserve-train-to-serve"
ARGO_TEMPLATE_FILE = COMPILED_DIR / "train_to_serve.argo.yaml"
_KFP_TYPES = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str}


@dataclass(frozen=True)
class Submitted:
    """What the server created: a run (KFP) or a workflow (Argo), and where to look at it."""

    kind: str
    name: str
    url: str


def read_token(env_name: str, token_file: str) -> str:
    """The bearer token from a file (when given) or the environment; '' when neither has one."""
    if token_file:
        try:
            return Path(token_file).read_text().strip()
        except OSError as exc:
            raise InvalidInputError("token_file", f"cannot read {token_file} ({exc.strerror})",
                                    "pass a readable token file") from None
    return os.environ.get(env_name, "").strip()


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
    """The run's arguments, typed as the compiled pipeline declares them; an unknown name is an error."""
    spec = next(doc for doc in yaml.safe_load_all(pipeline_file.read_text()) if doc and "root" in doc)
    declared = spec["root"]["inputDefinitions"]["parameters"]
    arguments = {}
    for name, value in parameters.items():
        if name not in declared:
            raise InvalidInputError(name, "is not a parameter of the pipeline", f"use one of {', '.join(declared)}")
        arguments[name] = _typed(name, value, declared[name]["parameterType"])
    return arguments


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


def argo_parameters(parameters: dict[str, str], template_file: Path = ARGO_TEMPLATE_FILE) -> list[str]:
    """The workflow's NAME=VALUE parameters; an unknown name is an error."""
    declared = [p["name"] for p in yaml.safe_load(template_file.read_text())["spec"]["arguments"]["parameters"]]
    for name in parameters:
        if name not in declared:
            raise InvalidInputError(name, "is not a parameter of the WorkflowTemplate",
                                    f"use one of {', '.join(declared)}")
    return [f"{name}={value}" for name, value in parameters.items()]


def checked_host(field: str, host: str) -> str:
    """An http(s) URL with a host, without its trailing slash; anything else is a one-line error."""
    parts = urllib.parse.urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(field, f"{host!r} is not an http(s) URL", f"pass --{field} http(s)://HOST[:PORT]")
    return host.rstrip("/")


def check_host(url: str, token: str, what: str) -> None:
    """One short request, so an unreachable host or a rejected token is said at once."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise PlatformError("token", f"{what} refused the token ({exc.code})",
                                "set a valid token in the environment or --token-file") from None
        raise PlatformError("host", f"{what} answered {exc.code} at {url}", "check the host URL") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PlatformError("host", f"cannot reach {what} at {url} ({reason})", "check the host URL and network") \
            from None


def submit_kfp(host: str, parameters: dict[str, str], experiment: str, token: str, service_account: str,
               run_name: str = "") -> Submitted:
    """Create the experiment (if new) and a run of the compiled train-to-serve pipeline."""
    arguments = kfp_arguments(parameters)
    host = checked_host("kfp", host)
    check_host(f"{host}/apis/v2beta1/healthz", token, "the KFP API")
    import contextlib
    import io

    import kfp

    with contextlib.redirect_stdout(io.StringIO()):  # the client prints links of its own; the CLI prints one line
        client = kfp.Client(host=host, existing_token=token or None)
        run = client.create_run_from_pipeline_package(str(KFP_PIPELINE), arguments=arguments,
                                                      experiment_name=experiment, run_name=run_name or None,
                                                      service_account=service_account)
    return Submitted("run", run.run_id, f"{host}/#/runs/details/{run.run_id}")


def submit_argo(host: str, parameters: dict[str, str], namespace: str, token: str) -> Submitted:
    """Submit a workflow from the meshserve-train-to-serve WorkflowTemplate (as `argo submit --from`)."""
    from hera.workflows import WorkflowsService
    from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest

    pairs = argo_parameters(parameters)
    host = checked_host("argo", host)
    check_host(f"{host}/api/v1/info", token, "the Argo server")
    service = WorkflowsService(host=host, token=token or None, namespace=namespace, verify_ssl=False)
    request = WorkflowSubmitRequest(namespace=namespace, resource_kind="WorkflowTemplate", resource_name=ARGO_TEMPLATE,
                                    submit_options=SubmitOpts(parameters=pairs))
    workflow = service.submit_workflow(request, namespace=namespace)
    return Submitted("workflow", workflow.metadata.name, f"{host}/workflows/{namespace}/{workflow.metadata.name}")
