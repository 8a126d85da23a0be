"""The deployment spec's command-line flags, shared by `meshserve render` (and the cluster deploy).

A spec comes from `--spec FILE`, from flags, or from both: flags given on the command line override
the file's values. Every value is checked by the spec itself, so a flag and a file key fail alike.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from components.deployment.spec import AUTOSCALERS, MODEL_FORMATS, ROUTERS, RUNTIMES, DeploymentSpec
from components.errors import InvalidInputError

# flag destination -> path in the spec mapping
_PATHS = {
    "name": ("name",), "namespace": ("namespace",), "version": ("version",),
    "primary_version": ("primary_version",), "storage_uri": ("storage_uri",), "model_format": ("model_format",),
    "runtime": ("runtime",), "router": ("router",), "canary_percent": ("canary_percent",),
    "service_account": ("service_account",), "autoscaling": ("autoscaling", "kind"),
    "min_replicas": ("autoscaling", "min_replicas"), "max_replicas": ("autoscaling", "max_replicas"),
    "scale_target": ("autoscaling", "target"), "scale_metric": ("autoscaling", "metric"),
    "metric_selector": ("autoscaling", "selector"), "cpu": ("resources", "cpu"), "memory": ("resources", "memory"),
    "gpus": ("resources", "gpus"), "node_selector": ("placement", "node_selector"),
    "toleration": ("placement", "tolerations"), "storage_secret": ("storage", "secret"),
    "storage_option": ("storage",), "runtime_option": ("runtime_options",), "router_option": ("router_options",),
}
_PAIRS = ("node_selector", "metric_selector", "storage_option", "runtime_option", "router_option")


def add_deployment_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that build a DeploymentSpec."""
    parser.add_argument("--spec", help="a deployment spec file (YAML or JSON); flags override its values")
    parser.add_argument("--name", help="model name (DNS-1123)")
    parser.add_argument("--namespace", help="namespace of the objects (default: default)")
    parser.add_argument("--version", help="this version's name, e.g. the upload step's v<digest>")
    parser.add_argument("--primary-version", help="the version serving now, which a canary is split against")
    parser.add_argument("--storage-uri", help="the upload step's storageUri (pvc://, s3://, oss://, gs://, https://)")
    parser.add_argument("--model-format", help=", ".join(MODEL_FORMATS))
    parser.add_argument("--runtime", help=", ".join(RUNTIMES) + " (default: kserve)")
    parser.add_argument("--router", help=", ".join(ROUTERS) + " (default: none)")
    parser.add_argument("--autoscaling", help=", ".join(AUTOSCALERS) + " (default: none; the local platform runs "
                        "hpa-qps and hpa-cpu with its own autoscaler)")
    parser.add_argument("--canary-percent", type=int, help="the new version's share of traffic, 0-100")
    parser.add_argument("--min-replicas", type=int, help="pods at least (0 with kpa: scale to zero)")
    parser.add_argument("--max-replicas", type=int, help="pods at most")
    parser.add_argument("--scale-target", type=_whole_or_auto,
                        help="hpa-cpu: CPU %% (80); hpa-qps: requests/s per pod (10); kpa: per pod (10); auto: the "
                             "scale target of a capacity search (--capacity)")
    parser.add_argument("--capacity", help="with --scale-target auto: the JSON `meshserve capacity` wrote (its "
                        "target, and where it came from, as the meshserve.io/scale-target-source annotation)")
    parser.add_argument("--scale-metric", help="hpa-qps: the External metric (sls_ingress_qps); kpa: concurrency|rps")
    parser.add_argument("--metric-selector", action="append", metavar="KEY=VALUE", help="hpa-qps: metric labels")
    parser.add_argument("--cpu", help="CPU per pod, requests = limits (e.g. 4 or 500m)")
    parser.add_argument("--memory", help="memory per pod, requests = limits (e.g. 500Mi)")
    parser.add_argument("--gpus", type=int, help="nvidia.com/gpu per pod")
    parser.add_argument("--node-selector", action="append", metavar="KEY=VALUE", help="node label (repeatable)")
    parser.add_argument("--toleration", action="append", metavar="KEY[=VALUE][:EFFECT]", help="repeatable")
    parser.add_argument("--service-account", help="the pods' ServiceAccount")
    parser.add_argument("--storage-secret", help="the Secret holding the object-store keys (a reference only)")
    parser.add_argument("--storage-option", action="append", metavar="KEY=VALUE",
                        help="s3_endpoint, s3_region, s3_use_https, oss_url, claim, volume, size, mount_options")
    parser.add_argument("--runtime-option", action="append", metavar="KEY=VALUE", help="the runtime's options")
    parser.add_argument("--router-option", action="append", metavar="KEY=VALUE", help="the router's options")


def spec_from_args(args: argparse.Namespace, defaults: dict[str, str] | None = None) -> DeploymentSpec:
    """The spec from `defaults`, then --spec, then the flags given (flags win)."""
    from components.deployment.spec import load_spec, spec_from_mapping

    data = dict(defaults or {}) | (load_spec(Path(args.spec)).to_mapping() if args.spec else {})
    _put_capacity_target(data, getattr(args, "scale_target", None), getattr(args, "capacity", None))
    for flag, path in _PATHS.items():
        value = getattr(args, flag, None)
        if value is None or value == "auto":
            continue
        if flag in _PAIRS:
            value = _pairs(flag, value)
        elif flag == "toleration":
            value = list(value)
        _put(data, path, value)
    return spec_from_mapping(data)


def given_flags(args: argparse.Namespace) -> set[str]:
    """The deployment flags given on the command line (and --spec)."""
    given = {flag for flag in _PATHS if getattr(args, flag, None) is not None}
    return given | ({"spec"} if getattr(args, "spec", None) else set())


def _whole_or_auto(text: str) -> int | str:
    """--scale-target: a whole number, or auto."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; pass one, or auto with --capacity") from None


def _put_capacity_target(data: dict, scale_target: int | str | None, capacity: str | None) -> None:
    """--scale-target auto: the capacity search's target (rounded down, at least 1) and its source."""
    import math

    from components.capacity.search import scale_target_from

    if scale_target != "auto":
        if capacity:
            raise InvalidInputError("capacity", "is read only with --scale-target auto", "add --scale-target auto")
        return
    if not capacity:
        raise InvalidInputError("capacity", "--scale-target auto needs the capacity search's JSON",
                                "run `meshserve capacity ... --json FILE`, then pass --capacity FILE")
    target, source = scale_target_from(capacity)
    _put(data, ("autoscaling", "target"), max(1, math.floor(target)))
    _put(data, ("autoscaling", "target_source"), source)


def _pairs(flag: str, items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise InvalidInputError(flag, f"{item!r} is not KEY=VALUE", f"write --{flag.replace('_', '-')} KEY=VALUE")
        pairs[key] = value
    return pairs


def _put(data: dict, path: tuple[str, ...], value) -> None:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    last = path[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        node[last] = node[last] | value
    else:
        node[last] = value
