"""`meshserve deploy|promote|rollback|status --platform local|kubernetes`: the rollout from the command line.

On the local platform a deploy takes --name, --storage-uri and --canary-percent; on a cluster it
takes the whole deployment spec (the flags of `meshserve render`, or --spec FILE) and the cluster
(--kubeconfig/--context, else the pod's own config).
"""

from __future__ import annotations

import argparse
import json

from components.errors import InvalidInputError
from components.platform.protocol import DeployRequest, ModelRef
from pipelines.deployment_flags import add_deployment_flags

_LOCAL_FLAGS = {"name", "storage_uri", "canary_percent", "replicas"}


MAX_READY_TIMEOUT_S = 86400.0  # a day: a longer wait is a hang by another name

def add_platform_commands(commands) -> None:
    """deploy, promote, rollback and status."""
    deploy = commands.add_parser("deploy", help="deploy a published model version as the canary",
                                 description="Local: --name, --storage-uri, --canary-percent. Kubernetes: the "
                                 "deployment spec's flags (see `meshserve render --help`) or --spec FILE.")
    _platform_flags(deploy)
    add_deployment_flags(deploy)
    deploy.add_argument("--replicas", type=int, help="local: model-server processes for the version (default: one "
                        "per two cores); on kubernetes use --min-replicas/--max-replicas")
    deploy.add_argument("--allow-same-model", action="store_true", help="let the canary be the model the primary "
                        "serves, published under another version name (an A/A rollout, to measure noise)")
    deploy.set_defaults(handler=_cmd_deploy)
    for verb, handler, text in (("promote", _cmd_promote, "make the canary the primary"),
                                ("rollback", _cmd_rollback, "remove the canary, all traffic to the primary")):
        sub = commands.add_parser(verb, help=text)
        _platform_flags(sub)
        sub.add_argument("--name", required=True, help="the model")
        sub.add_argument("--namespace", default="default", help="kubernetes: the model's namespace")
        sub.set_defaults(handler=handler)
    status = commands.add_parser("status", help="versions, weights, readiness and how clients reach each model")
    _platform_flags(status)
    status.add_argument("--namespace", default="default", help="kubernetes: the namespace to report")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_cmd_status)


def _platform_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", default="local", help="local (processes + nginx here) or kubernetes")
    parser.add_argument("--kubeconfig", default="", help="kubernetes: kubeconfig file (default: $KUBECONFIG, "
                        "~/.kube/config, or the pod's own config)")
    parser.add_argument("--context", default="", help="kubernetes: kubeconfig context")
    parser.add_argument("--ready-timeout", type=float, default=300.0,
                        help="kubernetes: seconds to wait for a version to be ready (default 300)")


def _check_platform_flags(args: argparse.Namespace) -> None:
    """The platform's own flags, before any spec is read or any cluster is reached."""
    from components.deployment.spec import check_namespace
    from components.platform.registry import PLATFORMS

    if args.platform not in PLATFORMS:
        raise InvalidInputError("platform", f"unknown platform {args.platform!r}", f"use one of {', '.join(PLATFORMS)}")
    if not 0 < args.ready_timeout <= MAX_READY_TIMEOUT_S:
        raise InvalidInputError("ready_timeout", f"{args.ready_timeout} is not a number of seconds in range",
                                f"pass --ready-timeout above 0, at most {MAX_READY_TIMEOUT_S:.0f}")
    if getattr(args, "namespace", None) is not None:  # the local platform has one namespace, but a name is a name
        check_namespace(args.namespace)


def _platform(args: argparse.Namespace):
    from components.platform.registry import ClusterAccess, platform_for

    _check_platform_flags(args)
    return platform_for(args.platform, ClusterAccess(args.kubeconfig, args.context, args.ready_timeout))


def _cmd_deploy(args: argparse.Namespace) -> None:
    _check_platform_flags(args)
    if args.platform == "local":
        _check_local_flags(args)
        version = _platform(args).deploy_version(args.name, args.storage_uri, args.canary_percent or 0,
                                                 args.replicas, args.allow_same_model)
        replicas = version.details["replicas"]
        print(f"deployed {args.name} {version.version} as canary: {len(replicas)} replica(s), "
              + ", ".join(f"http 127.0.0.1:{r['http_port']} grpc 127.0.0.1:{r['grpc_port']} pid {r['pid']}"
                          for r in replicas))
        return
    from pipelines.deployment_flags import spec_from_args

    if args.replicas is not None:  # before the spec is read: the flag is wrong whatever the spec says
        raise InvalidInputError("replicas", "applies to --platform local only",
                                "on kubernetes pass --min-replicas and --max-replicas")
    spec = spec_from_args(args)
    deployed = _platform(args).deploy(DeployRequest(spec, allow_same_model=args.allow_same_model))
    headers = " ".join(f"-H '{line}'" for line in deployed.clients.header_lines())
    print(f"deployed {spec.name} {deployed.version.version} in {spec.namespace}: ready; clients: "
          f"{deployed.clients.url} {headers}".rstrip())


def _cmd_promote(args: argparse.Namespace) -> None:
    platform = _platform(args)
    version = platform.promote(ModelRef(args.name, args.namespace))
    print(f"promoted {args.name} {version.version}: it now takes all traffic")


def _cmd_rollback(args: argparse.Namespace) -> None:
    platform = _platform(args)
    primary = platform.rollback(ModelRef(args.name, args.namespace))
    print(f"rolled back {args.name}: " + (f"{primary.version} takes all traffic" if primary else "no version left"))


def _cmd_status(args: argparse.Namespace) -> None:
    if args.platform == "local":
        print_local_status(args.json)
        return
    report = _platform(args).status(args.namespace)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for name, model in report.items():
        if "error" in model:
            print(f"{name}  unreadable: {model['error']}")
            continue
        headers = " ".join(f"{k}: {v}" for k, v in model["headers"].items())
        print(f"{name}  {model['url']}  {headers}".rstrip())
        for v in model["versions"]:
            print(f"  {v['track']:8} {v['version']:16} {v['weight']:3d}%  {'ready' if v['ready'] else 'NOT READY'}  "
                  f"{v['storage_uri']}")
    if not report:
        print(f"no model is deployed in {args.namespace}")


def _check_local_flags(args: argparse.Namespace) -> None:
    from pipelines.deployment_flags import given_flags

    extra = sorted(given_flags(args) - _LOCAL_FLAGS)
    if extra:
        raise InvalidInputError(extra[0], "applies to --platform kubernetes only",
                                "the local platform takes --name, --storage-uri, --canary-percent and --replicas")
    for flag in ("name", "storage_uri"):
        if not getattr(args, flag):
            raise InvalidInputError(flag, "is required", f"pass --{flag.replace('_', '-')}")


def print_local_status(as_json: bool) -> None:
    """The local platform's router URLs and versions, as a table or JSON."""
    import json

    from components.platform.local import LocalPlatform

    status = LocalPlatform().status()
    if as_json:
        print(json.dumps(status, indent=1))
        return
    router = status["router"]
    for line in status["recovered"]:
        print(f"recovered: {line}")
    if not status["models"]:
        print("nothing is deployed on the local platform (no router running)")
        return
    running = f"pid {router['pid']}" if router["running"] else "NOT RUNNING"
    print(f"router  REST {router['http']}  gRPC {router['grpc']}  L4 gRPC {router['l4_grpc']}  {running}")
    for name, versions in status["models"].items():
        for v in versions:
            replicas = v["replicas"]
            up = sum(r["ready"] for r in replicas)
            health = "ready" if up == len(replicas) else "DOWN" if up == 0 else "DEGRADED"
            print(f"{name:16} {v['track']:8} {v['version']:16} {v['weight']:3d}%  {health:8} {up}/{len(replicas)}  "
                  + "  ".join(f"pid {r['pid']} http {r['http']} grpc {r['grpc']}" for r in replicas))
