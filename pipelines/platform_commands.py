"""`meshserve deploy|promote|rollback|status --platform local|kubernetes`: the rollout from the command line.

One path for every platform: the deployment spec comes from the flags of `meshserve render` (or --spec FILE),
and the platform refuses the fields it would not read. On the local platform that leaves --name, --storage-uri,
--canary-percent and --replicas; a cluster takes the whole spec and is reached by --kubeconfig/--context (else
the pod's own config).
"""

from __future__ import annotations

import argparse
import json
import time

from components.errors import InvalidInputError
from components.platform.protocol import DeployRequest, ModelRef, ModelStatus, PlatformStatus
from components.rollout.progress import Progress
from pipelines.deployment_flags import add_deployment_flags

MAX_READY_TIMEOUT_S = 86400.0  # a day: a longer wait is a hang by another name

def add_platform_commands(commands) -> None:
    """deploy, promote, rollback and status."""
    deploy = commands.add_parser("deploy", help="deploy a published model version as the canary",
                                 description="Local: --name, --storage-uri, --canary-percent. Kubernetes: the "
                                 "deployment spec's flags (see `meshserve render --help`) or --spec FILE.")
    platform_flags(deploy)
    add_deployment_flags(deploy)
    deploy.add_argument("--replicas", type=int, help="local: model-server processes for the version (default: one "
                        "per two cores); on kubernetes use --min-replicas/--max-replicas")
    deploy.add_argument("--allow-same-model", action="store_true", help="let the canary be the model the primary "
                        "serves, published under another version name (an A/A rollout, to measure noise)")
    deploy.set_defaults(handler=_cmd_deploy)
    for verb, handler, text in (("promote", _cmd_promote, "make the canary the primary"),
                                ("rollback", _cmd_rollback, "remove the canary, all traffic to the primary")):
        sub = commands.add_parser(verb, help=text)
        platform_flags(sub)
        sub.add_argument("--name", required=True, help="the model")
        sub.add_argument("--namespace", default="default", help="kubernetes: the model's namespace")
        sub.add_argument("--take-over", action="store_true", help="act on a rollout a live pipeline run holds "
                         "(status names the run and its lease)")
        sub.set_defaults(handler=handler)
    status = commands.add_parser("status", help="versions, weights, readiness and how clients reach each model")
    platform_flags(status)
    status.add_argument("--namespace", default="default", help="kubernetes: the namespace to report")
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", action="store_true", help="refresh every second until every progressive "
                        "rollout shown has ended (phase, step, weight, the latest guard reading and analysis)")
    status.set_defaults(handler=_cmd_status)


def platform_flags(parser: argparse.ArgumentParser) -> None:
    """--platform and how to reach a cluster."""
    parser.add_argument("--platform", default="local", help="local (processes + nginx here) or kubernetes")
    parser.add_argument("--kubeconfig", default="", help="kubernetes: kubeconfig file (default: $KUBECONFIG, "
                        "~/.kube/config, or the pod's own config)")
    parser.add_argument("--context", default="", help="kubernetes: kubeconfig context")
    parser.add_argument("--ready-timeout", type=float, default=300.0,
                        help="kubernetes: seconds to wait for a version to be ready (default 300)")


def check_platform_flags(args: argparse.Namespace) -> None:
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


def platform_of(args: argparse.Namespace):
    """The platform the flags name, reached as they say (checked first)."""
    from components.platform.registry import platform_for

    check_platform_flags(args)
    return platform_for(args.platform, cluster_access(args))


def cluster_access(args: argparse.Namespace):
    """How the flags say to reach a cluster."""
    from components.platform.registry import ClusterAccess

    return ClusterAccess(args.kubeconfig, args.context, args.ready_timeout)


def _cmd_deploy(args: argparse.Namespace) -> None:
    from components.platform.registry import platform_class
    from pipelines.deployment_flags import given_flags, spec_from_args

    check_platform_flags(args)
    kind = platform_class(args.platform)
    kind.refuse_unread(given_flags(args) | ({"replicas"} if args.replicas is not None else set()))
    spec = spec_from_args(args, kind.SPEC_DEFAULTS)
    deployed = kind.connect(cluster_access(args)).deploy(DeployRequest(spec, args.replicas, args.allow_same_model))
    headers = " ".join(f"-H '{line}'" for line in deployed.clients.header_lines())
    print(f"deployed {spec.name} {deployed.version.version} in {spec.namespace}: ready; clients: "
          f"{deployed.clients.url} {headers}".rstrip())


def _cmd_promote(args: argparse.Namespace) -> None:
    platform = platform_of(args)
    version = platform.promote(ModelRef(args.name, args.namespace), take_over=args.take_over)
    print(f"promoted {args.name} {version.version}: it now takes all traffic")


def _cmd_rollback(args: argparse.Namespace) -> None:
    platform = platform_of(args)
    primary = platform.rollback(ModelRef(args.name, args.namespace), take_over=args.take_over)
    print(f"rolled back {args.name}: " + (f"{primary.version} takes all traffic" if primary else "no version left"))


def _cmd_status(args: argparse.Namespace) -> None:
    platform = platform_of(args)
    if not args.watch:
        print_status(platform.status(args.namespace), args.json, f"in {args.namespace}")
        return
    while True:
        status = platform.status(args.namespace)
        print(f"\x1b[H\x1b[2J{time.strftime('%H:%M:%S')}  meshserve status --watch", flush=True)
        print_status(status, args.json, f"in {args.namespace}")
        if not any(model.progress and not model.progress.finished for model in status.models):
            return
        time.sleep(1.0)


def print_status(status: PlatformStatus, as_json: bool, where: str = "on the local platform") -> None:
    """A platform's status as a table (or JSON): the gateway it runs, each model's clients and versions, drift."""
    if as_json:
        print(json.dumps(status.to_dict(), indent=1))
        return
    for line in status.recovered:
        print(f"recovered: {line}")
    if status.gateway:
        running = f"pid {status.gateway_pid}" if status.gateway_pid else "NOT RUNNING"
        print("router  " + "  ".join(f"{kind.upper()} {address}" for kind, address in status.gateway.items())
              + f"  {running}")
    for model in status.models:
        _print_model(model)
    if status.mesh_routing:
        _print_mesh(status)
    if not status.models:
        print(f"no model is deployed {where}")


def _print_model(model: ModelStatus) -> None:
    if model.error:
        print(f"{model.name}  unreadable: {model.error}")
        return
    clients = model.clients
    headers = " ".join(f"{key}: {value}" for key, value in (clients.headers if clients else {}).items())
    print(f"{model.name}  {clients.url if clients else ''}  {headers}".rstrip())
    if model.rollout:
        print(f"  rollout: {model.rollout}")
    for v in model.versions:
        up = sum(instance.ready for instance in v.instances)
        health = "ready" if v.ready else "DOWN" if not v.instances or up == 0 else "DEGRADED"
        count = f" {up}/{len(v.instances)}" if v.instances else ""
        processes = "  ".join(f"pid {i.pid}{f' ({i.role})' if i.role else ''} http {i.http} grpc {i.grpc}"
                              for i in v.instances)
        print(f"  {v.track:8} {v.version:16} {v.weight:3d}%  {health:8}{count}  {v.storage_uri}  {processes}".rstrip())
    if model.drift:
        print(f"  DRIFT: {model.drift}")
    if model.progress:
        _print_progress(model.progress)


def _print_mesh(status: PlatformStatus) -> None:
    """The local model mesh: its routing, and what each runtime holds and forwards."""
    print(f"model mesh  routing {status.mesh_routing}, {len(status.mesh_runtimes)} runtimes")
    for runtime in status.mesh_runtimes:
        holds = f"  holds {', '.join(runtime.holds)}" if runtime.holds else "  holds nothing"
        forwards = f"  forwards {', '.join(runtime.forwards)}" if runtime.forwards else ""
        print(f"  {runtime.label}  pid {runtime.pid}  {runtime.address}{holds}{forwards}")


def _print_progress(progress: Progress) -> None:
    """A progressive rollout: phase, step and weight, its driver, and what its step last saw."""
    steps = len(progress.policy.get("steps", [])) or 1
    driver = progress.driver
    seen = f"driver pid {driver.pid} on {driver.host}, seen {time.time() - driver.seen:.0f} s ago" if driver.pid else ""
    at = f"step {min(progress.step + 1, steps)}/{steps} at {progress.weight}%"
    print(f"  progressive: {progress.version} {progress.phase} {at}"
          f"{'; approved' if progress.approved else ''}{'; ' + seen if seen and not progress.finished else ''}")
    if progress.message:
        print(f"    {progress.message}")
    last = progress.steps[-1] if progress.steps else None
    if last is not None and last.guard:
        reading = last.guard[-1]
        rate = "-" if reading["success_rate"] is None else f"{reading['success_rate']:.2f}%"
        p99 = "-" if reading["p99_ms"] is None else f"{reading['p99_ms']:.1f} ms"
        print(f"    guard (step {last.index + 1}, {len(last.guard)} interval(s)): {reading['outcome']}: "
              f"{reading['requests'] or 0:.0f} requests, success {rate}, p99 {p99}")
    if last is not None and last.analysis:
        analysis = last.analysis
        print(f"    analysis (step {last.index + 1}): {analysis['decision']} after {analysis['looks']} look(s), "
              f"{analysis['measured_s']:.0f} s per side")
    elif last is not None and last.look:
        look = last.look
        print(f"    analysis (step {last.index + 1}) running: look {look['index']} {look['decision']} after "
              f"{look['measured_s']:.0f} s per side")
