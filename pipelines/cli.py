"""The `meshserve` command line: each step runnable by hand, plus `run` for the local pipeline.

Every failure a user can fix ends as one line on stderr and exit code 2; an unexpected one as one line
naming the log file that holds its traceback, exit code 1; an interruption (Ctrl-C, SIGTERM) exit code 130.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from components.autoscaling.algorithm import HPA_SYNC_PERIOD_S
from components.errors import InvalidInputError, MeshserveError
from components.redaction import scrub
from components.routing.istio import MeshTarget
from pipelines.analysis_commands import add_analysis_commands
from pipelines.capacity_commands import add_capacity_commands
from pipelines.deployment_flags import add_deployment_flags
from pipelines.platform_commands import add_platform_commands, platform_flags, print_status
from pipelines.rollout_commands import add_rollout_commands


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, like every other meshserve error."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _cmd_train(args: argparse.Namespace) -> None:
    from components.steps.train.core import run_train

    result = run_train(
        framework=args.framework, dataset=args.dataset, algorithm=args.algorithm or "", seed=args.seed,
        epochs=args.epochs, train_limit=args.train_limit, test_limit=args.test_limit, data_uri=args.data_uri,
        model_dir=Path(args.out), serialization=args.serialization,
    )
    manifest = result.manifest
    print(f"trained {manifest.name} ({manifest.training['algorithm']}) in {result.seconds:.1f} s: "
          f"accuracy {result.evaluation.accuracy:.4f} on {result.evaluation.n_test} held-out samples")
    print(f"model {result.model_dir} ({manifest.format}, digest {manifest.model_digest[:12]})")


def _cmd_upload(args: argparse.Namespace) -> None:
    from components.steps.upload.core import run_upload

    result = run_upload(Path(args.model), args.to, args.version)
    verb = "published" if result.published else "already published (no change)"
    size = f"{result.bytes_uploaded / 1e6:.1f} MB in {result.seconds:.2f} s" if result.published else ""
    print(f"{verb}: {result.storage_uri} {size}".rstrip())


def _cmd_fetch(args: argparse.Namespace) -> None:
    from components.datasets.mnist import fetch_mnist
    from components.paths import writable_directory

    cache = writable_directory("cache", args.cache) if args.cache is not None else None
    print(f"mnist ready (md5 verified): {fetch_mnist(cache)}")


def _cmd_run(args: argparse.Namespace) -> None:
    from pipelines.local_run import run_local_pipeline

    run_local_pipeline(name=args.name, dataset=args.dataset, framework=args.framework, storage_prefix=args.to)
    # exit 0 whatever the gate decided: a rollback is the pipeline working, not failing


def _cmd_bench(args: argparse.Namespace) -> None:
    from components.benchmark.reporters.progress import terminal_progress
    from components.benchmark.reporters.text import text_report
    from components.benchmark.result import write_result
    from components.benchmark.settings import parse_duration
    from components.paths import checked_outputs
    from components.steps.benchmark.core import run_benchmark_step

    checked_outputs({"json": args.json, "html": args.html}, [args.payload_file])
    duration = parse_duration(args.t, "t") if args.t else (None if args.n else 5.0)
    warmup = parse_duration(args.warmup, "warmup")
    progress, finish = terminal_progress((duration or 0) + warmup)
    try:
        result = run_benchmark_step(
            args.url, protocol=args.protocol, model=args.model or "", qps=args.qps, ramp_to_qps=args.ramp_to,
            concurrency=args.c, duration=duration, count=args.n, warmup=warmup,
            timeout=parse_duration(args.timeout, "timeout"), headers=args.H or (), payload=args.payload or "",
            payload_file=args.payload_file or "", sample=args.sample or "", input_name=args.input_name or "",
            datatype=args.datatype, procs=args.procs, grpc_channels=args.grpc_channels, jitter=args.jitter,
            keep_samples=not args.no_samples, progress=progress,
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the load was stopped; no result written to {args.json}" if args.json else
                                "the load was stopped") from None
    finally:
        finish()
    write_result(result, Path(args.json))
    if args.html:
        from components.benchmark.reporters.html import html_report

        Path(args.html).write_text(html_report(result))
    print(text_report(result))


_POLICY_FLAGS = {
    "max_p50_ms": "slo.max_p50_ms", "max_p90_ms": "slo.max_p90_ms", "max_p99_ms": "slo.max_p99_ms",
    "min_success_ratio": "slo.min_success_ratio", "min_achieved_qps": "slo.min_achieved_qps",
    "min_accuracy": "slo.min_accuracy", "max_p50_increase_pct": "relative.max_p50_increase_pct",
    "max_p99_increase_pct": "relative.max_p99_increase_pct", "min_samples": "statistics.min_samples",
    "confidence": "statistics.confidence",
}


def _cmd_gate(args: argparse.Namespace) -> int:
    from components.gate.policy import load_policy
    from components.paths import checked_outputs
    from components.steps.gate.core import EXIT_CODES, run_gate

    overrides = {key: getattr(args, flag) for flag, key in _POLICY_FLAGS.items() if getattr(args, flag) is not None}
    if args.on_inconclusive:
        overrides["on_inconclusive"] = args.on_inconclusive
    policy = load_policy(Path(args.policy) if args.policy else None, overrides)
    checked_outputs({"json": args.json, "markdown": args.markdown, "html": args.html},
                    [args.candidate, args.baseline, args.policy, args.candidate_model, args.baseline_model])
    outcome = run_gate(Path(args.candidate), Path(args.baseline) if args.baseline else None, policy,
                       Path(args.candidate_model) if args.candidate_model else None,
                       Path(args.baseline_model) if args.baseline_model else None)
    for target, text in ((args.json, outcome.verdict_json), (args.markdown, outcome.markdown),
                         (args.html, outcome.html)):
        if target:
            Path(target).write_text(text)
    print(outcome.markdown)
    if outcome.verdict.decision != "PROMOTE":
        print(f"meshserve gate: {outcome.verdict.summary()}", file=sys.stderr)
    return EXIT_CODES[outcome.verdict.decision]


def _cmd_local_status(args: argparse.Namespace) -> None:
    import json
    from dataclasses import asdict

    from components.platform.autoscaler import AutoscalerProcess, kept_status
    from components.platform.local import LocalPlatform

    platform = LocalPlatform()
    status, pid = platform.status(), AutoscalerProcess(platform.root).pid()
    decisions = kept_status(platform.root) if pid is not None else []
    if args.json:
        autoscaler = {"autoscaler": {"pid": pid, "last_sync": [asdict(decision) for decision in decisions]}}
        print(json.dumps(status.to_dict() | (autoscaler if pid is not None else {}), indent=1))
        return
    print_status(status, as_json=False)
    if pid is not None:
        print(f"autoscaler  pid {pid}")
        for scaling in decisions:
            print(f"  {scaling.model} {scaling.track} {scaling.version}: {scaling.current} -> {scaling.desired} "
                  f"replicas ({scaling.reason}: {scaling.message})")


def _cmd_local_down(args: argparse.Namespace) -> None:
    from components.platform.local import LocalPlatform

    stopped = LocalPlatform().down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def _cmd_local_scale(args: argparse.Namespace) -> None:
    from components.platform.local import LocalPlatform
    from components.platform.protocol import ModelRef
    from components.platform.state import processes_of

    version = LocalPlatform().scale(ModelRef(args.name), args.replicas, args.track)
    pids = ", ".join(str(process.pid) for process in processes_of(version))
    print(f"{args.name} {args.track} {version.version}: {args.replicas} replica(s), pids {pids}")


def _cmd_local_autoscale(args: argparse.Namespace) -> None:
    from components.platform.autoscaler import ScalingTarget
    from components.platform.local import LocalPlatform

    platform = LocalPlatform()
    if platform.status().model(args.name) is None:
        raise InvalidInputError("name", f"{args.name} is not deployed on the local platform", "deploy it first")
    value, source = _scale_target(args.scale_target, args.capacity)
    if args.scale_target == "auto" and args.autoscaling == "hpa-cpu":
        raise InvalidInputError("scale_target", "a capacity is requests per second, and hpa-cpu scales on CPU",
                                "use --autoscaling hpa-qps with --scale-target auto")
    target = ScalingTarget(args.name, args.autoscaling, args.min_replicas, args.max_replicas, value,
                           args.stabilization_window, source)
    pid = platform.autoscale(target, args.sync_period)
    print(f"{args.name}: {args.autoscaling} target {value:g} per replica ({source}), {args.min_replicas} to "
          f"{args.max_replicas} replicas; autoscaler pid {pid}, every {args.sync_period:g} s")


def _scale_target(given: str, capacity: str | None) -> tuple[float, str]:
    """The target per replica and where it came from: a number given, or `auto` from a capacity search."""
    from components.capacity.search import scale_target_from

    if given != "auto":
        try:
            return float(given), "given"
        except ValueError:
            raise InvalidInputError("scale_target", f"{given!r} is not a number", "pass a number, or auto") from None
    if not capacity:
        raise InvalidInputError("capacity", "--scale-target auto needs the capacity search's JSON",
                                "run `meshserve capacity ... --json FILE`, then pass --capacity FILE")
    return scale_target_from(capacity)


def _cmd_local_mesh(args: argparse.Namespace) -> None:
    import yaml

    from components.platform.local import LocalPlatform
    from components.routing.istio import render_mesh

    target = MeshTarget(flavor=args.flavor, namespace=args.namespace, gateway=args.gateway,
                        rest_port=args.rest_port, grpc_port=args.grpc_port, service_host=args.service_host,
                        service_rest_port=args.service_rest_port, service_grpc_port=args.service_grpc_port,
                        dynamic_subset_key=args.dynamic_subset_key)
    print(yaml.safe_dump_all(render_mesh(LocalPlatform().routing_spec(), target), sort_keys=False), end="")


def _cmd_serve(args: argparse.Namespace) -> None:
    from components.compat import import_kserve
    from components.routing.spec import Endpoint, Route

    Route(args.name, Endpoint("-", "-", "-")).validated()  # the name is a URL path segment and a route's name
    for flag in ("http_port", "grpc_port"):
        _check_free_port(flag, getattr(args, flag))
    if args.http_port == args.grpc_port:
        raise MeshserveError("grpc_port", f"{args.grpc_port} is also the REST port", "pass two different ports")

    serve = import_kserve("components.serving.model_server").serve  # kserve must not parse our argv

    serve(Path(args.model_dir), args.name, http_port=args.http_port, grpc_port=args.grpc_port)


def _cmd_render(args: argparse.Namespace) -> None:
    from components.deployment.objects import dump_objects
    from components.platform.kubernetes.render import render_deployment
    from pipelines.deployment_flags import spec_from_args

    print(dump_objects(render_deployment(spec_from_args(args))), end="")


def _cmd_compile(args: argparse.Namespace) -> None:
    from components.paths import writable_directory
    from pipelines.compile import compile_release

    for path in compile_release(writable_directory("out", args.out), args.image or ""):
        print(f"wrote {path}")


def _cmd_submit(args: argparse.Namespace) -> None:
    from pipelines.submit import parse_parameters, read_token, submit_argo, submit_kfp, tls_context

    if bool(args.kfp) == bool(args.argo):
        raise MeshserveError("host", "pass exactly one of --kfp HOST and --argo HOST", "see `meshserve submit --help`")
    parameters = parse_parameters(args.p or [])
    tls = tls_context(args.ca_file, args.insecure)
    if args.kfp:
        submitted = submit_kfp(args.kfp, parameters, args.experiment, read_token("KFP_TOKEN", args.token_file),
                               args.service_account, tls=tls)
    else:
        submitted = submit_argo(args.argo, parameters, args.namespace, read_token("ARGO_TOKEN", args.token_file),
                                tls)
    if args.insecure:
        print("meshserve submit: warning: the server's TLS certificate was not verified (--insecure); the token "
              "could have reached anyone on the path", file=sys.stderr)
    print(f"submitted {submitted.kind} {submitted.name}: {submitted.url}")


def _check_free_port(flag: str, port: int) -> None:
    """A port the model server can listen on, or a one-line error naming the flag."""
    import socket

    if not 0 < port < 65536:
        raise MeshserveError(flag, f"{port} is not a port", f"pass --{flag.replace('_', '-')} 1 to 65535")
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise MeshserveError(flag, f"port {port} is in use", "pick a free port") from None


def build_parser() -> argparse.ArgumentParser:
    """All sub-commands and their flags."""
    parser = _Parser(prog="meshserve", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train and evaluate a model, write a servable model directory")
    train.add_argument("--framework", required=True, help="sklearn or tensorflow")
    train.add_argument("--dataset", required=True, help="iris, digits or mnist")
    train.add_argument("--algorithm", help="sklearn: svm|logreg|random_forest; tensorflow: mlp|cnn")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--epochs", type=int, default=5, help="tensorflow only")
    train.add_argument("--train-limit", type=int, help="rows of the training split to use (0 = all)")
    train.add_argument("--test-limit", type=int, help="rows of the test split to use")
    train.add_argument("--data-uri", help="MNIST IDX directory (local path or fsspec URI)")
    train.add_argument("--serialization", default="", help="sklearn: joblib (default; a pickle, loading runs it) or "
                       "skops (loads only trusted types; served by meshserve's own server); tensorflow: "
                       "tf-savedmodel (default; TF Serving's layout) or triton (Triton's layout and config.pbtxt)")
    train.set_defaults(handler=_cmd_train)

    upload = commands.add_parser("upload", help="publish a model directory as an immutable version")
    upload.add_argument("--model", required=True, help="model directory written by `meshserve train`")
    upload.add_argument("--to", required=True, help="pvc://CLAIM/PATH, s3://BUCKET/PREFIX or oss://BUCKET/PREFIX")
    upload.add_argument("--version", help="version name (default: v + 12 hex digits of the model digest)")
    upload.set_defaults(handler=_cmd_upload)

    datasets = commands.add_parser("datasets", help="dataset utilities")
    dataset_commands = datasets.add_subparsers(dest="dataset_command", required=True, parser_class=_Parser)
    fetch = dataset_commands.add_parser("fetch", help="fetch a dataset into the local cache, verified")
    fetch.add_argument("name", choices=["mnist"])
    fetch.add_argument("--cache", help="cache directory (default: $MESHSERVE_CACHE_DIR/mnist or ~/.cache/...)")
    fetch.set_defaults(handler=_cmd_fetch)

    run = commands.add_parser("run", help="run the train-to-serve pipeline locally through kfp.local")
    run.add_argument("--name", default="digits", help="model name behind the router")
    run.add_argument("--dataset", default="digits")
    run.add_argument("--framework", default="sklearn")
    run.add_argument("--to", default="pvc://my-models-pvc/meshserve", help="storage prefix for model versions")
    run.set_defaults(handler=_cmd_run)

    bench = commands.add_parser("bench", allow_abbrev=False, help="load-test an endpoint; write a result artifact",
                                description="Flags follow fortio's names where they exist.")
    bench.add_argument("url", help="http(s)://host:port[/path] for REST, host:port for gRPC")
    bench.add_argument("--protocol", default="http",
                       help="http, kserve-v1, v2-rest, v2-grpc, tfserving-rest or tfserving-grpc")
    bench.add_argument("--model", help="model name (REST paths for a base URL; gRPC requests)")
    bench.add_argument("-qps", type=float, help="open loop at this rate; omitted = closed loop at full speed")
    bench.add_argument("--ramp-to", type=float, help="ramp the rate linearly from -qps to this over the run")
    bench.add_argument("-c", type=int, default=8, help="connections (HTTP) / concurrent requests (default 8)")
    bench.add_argument("-t", help="measured duration, e.g. 30s (default 5s unless -n)")
    bench.add_argument("-n", type=int, help="measured request count")
    bench.add_argument("--warmup", default="0s", help="warm-up sent before measuring, excluded from the result")
    bench.add_argument("-timeout", default="3s", help="per-request timeout (default 3s)")
    bench.add_argument("-H", action="append", help="extra header 'Name: value' (repeatable)")
    bench.add_argument("-payload", help="request body as text")
    bench.add_argument("-payload-file", dest="payload_file", help="request body from a file (gRPC: serialized)")
    bench.add_argument("--sample", help="build the body from a dataset's first test row (iris, digits, mnist)")
    bench.add_argument("--input-name", help="input tensor name for --sample (default input-0; TF Serving: input)")
    bench.add_argument("--datatype", default="FP32", help="input datatype for --sample (default FP32)")
    bench.add_argument("--procs", type=int, default=1, help="load processes, each with its own event loop")
    bench.add_argument("--grpc-channels", type=int, default=1, help="gRPC connections (default 1)")
    bench.add_argument("-jitter", action="store_true", help="move each send by up to ±10%% of the interval")
    bench.add_argument("--no-samples", action="store_true", help="leave raw latency samples out of the result")
    bench.add_argument("--json", required=True, help="where to write the result artifact")
    bench.add_argument("--html", help="where to write the HTML report")
    bench.set_defaults(handler=_cmd_bench)

    gate = commands.add_parser("gate", help="decide PROMOTE / ROLLBACK / INCONCLUSIVE from benchmark results",
                               description="Exit codes: 0 PROMOTE, 3 ROLLBACK, 4 INCONCLUSIVE, 2 bad input.")
    gate.add_argument("--candidate", required=True, help="the candidate's benchmark result (meshserve bench --json)")
    gate.add_argument("--baseline", help="the baseline's result, measured the same way in the same run")
    gate.add_argument("--policy", help="policy file (YAML or JSON); flags below override it")
    gate.add_argument("--candidate-model", help="candidate model directory or manifest (training metrics)")
    gate.add_argument("--baseline-model", help="baseline model directory or manifest")
    for flag in _POLICY_FLAGS:
        gate.add_argument("--" + flag.replace("_", "-"), type=int if flag == "min_samples" else float)
    gate.add_argument("--on-inconclusive", choices=["rollback", "hold"])
    gate.add_argument("--json", help="where to write the verdict")
    gate.add_argument("--markdown", help="where to write the explanation (Markdown)")
    gate.add_argument("--html", help="where to write the HTML report")
    gate.set_defaults(handler=_cmd_gate)

    add_platform_commands(commands)
    add_rollout_commands(commands, platform_flags)
    add_analysis_commands(commands)
    add_capacity_commands(commands)
    local = commands.add_parser("local", help="the local platform's processes")
    local_commands = local.add_subparsers(dest="local_command", required=True, parser_class=_Parser)
    status = local_commands.add_parser("status", help="router URLs, versions, weights, health")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_cmd_local_status)
    local_commands.add_parser("down", help="stop everything the local platform started").set_defaults(
        handler=_cmd_local_down)
    scale = local_commands.add_parser("scale", help="serve a version by more or fewer model-server processes")
    scale.add_argument("name", help="the model")
    scale.add_argument("--replicas", type=int, required=True, help="model-server processes (1 to 16)")
    scale.add_argument("--track", choices=["primary", "canary"], default="primary", help="which version")
    scale.set_defaults(handler=_cmd_local_scale)
    autoscale = local_commands.add_parser("autoscale", help="scale a model's versions by the HPA's rules, beside "
                                          "the router, until `local down`")
    autoscale.add_argument("name", help="the model")
    autoscale.add_argument("--autoscaling", required=True, choices=["hpa-qps", "hpa-cpu"],
                           help="requests per second (the router's live metrics) or CPU per replica")
    autoscale.add_argument("--min-replicas", type=int, default=1)
    autoscale.add_argument("--max-replicas", type=int, required=True)
    autoscale.add_argument("--scale-target", required=True,
                           help="per replica: requests per second (hpa-qps) or CPU percent of one core (hpa-cpu); "
                                "auto: the scale target of `meshserve capacity --json` (--capacity)")
    autoscale.add_argument("--capacity", help="with --scale-target auto: the JSON `meshserve capacity` wrote")
    autoscale.add_argument("--stabilization-window", type=float, default=300.0,
                           help="seconds a scale-down waits for the highest recommendation (HPA default 300)")
    autoscale.add_argument("--sync-period", type=float, default=HPA_SYNC_PERIOD_S,
                           help="seconds between syncs (HPA default 15)")
    autoscale.set_defaults(handler=_cmd_local_autoscale)
    mesh = local_commands.add_parser("mesh", help="the routes in force, as Istio or ASM objects for a cluster")
    mesh.add_argument("--flavor", default="istio", help="istio (networking.istio.io/v1) or asm (v1beta1)")
    mesh.add_argument("--namespace", default="default", help="namespace of the objects and Services")
    mesh.add_argument("--gateway", default="meshserve-gateway", help="Gateway (and VirtualService) name")
    mesh.add_argument("--rest-port", type=int, default=MeshTarget.rest_port, help="the gateway's REST port")
    mesh.add_argument("--grpc-port", type=int, default=MeshTarget.grpc_port, help="the gateway's gRPC port")
    mesh.add_argument("--service-host", default=MeshTarget.service_host,
                      help="each version's Service host; {name} {version} {namespace} are filled in")
    mesh.add_argument("--service-rest-port", type=int, default=MeshTarget.service_rest_port,
                      help="the Services' REST port (KServe predictor: 80; ModelMesh: 8008)")
    mesh.add_argument("--service-grpc-port", type=int, default=MeshTarget.service_grpc_port,
                      help="the Services' gRPC port (ModelMesh: 8033)")
    mesh.add_argument("--dynamic-subset-key", default="", help="asm: the pod label to group endpoints by, "
                      "e.g. modelmesh.asm.alibabacloud.com")
    mesh.set_defaults(handler=_cmd_local_mesh)

    serve = commands.add_parser("serve", help="serve a model directory with KServe's model server on 127.0.0.1")
    serve.add_argument("model_dir", help="model directory written by `meshserve train`")
    serve.add_argument("--name", required=True, help="model name in the inference URLs")
    serve.add_argument("--http-port", type=int, default=8080, help="REST port (v1 and v2; default 8080)")
    serve.add_argument("--grpc-port", type=int, default=8081, help="gRPC v2 port (default 8081)")
    serve.set_defaults(handler=_cmd_serve)

    render = commands.add_parser("render", help="a deployment spec as the cluster objects that serve it (YAML, "
                                 "in apply order)", description="Flags or --spec FILE; flags override the file.")
    add_deployment_flags(render)
    render.set_defaults(handler=_cmd_render)

    compile_ = commands.add_parser("compile", help="write the KFP pipelines, the Argo WorkflowTemplates and the "
                                   "step components as YAML (`make golden` rewrites the committed ones)")
    compile_.add_argument("--out", default="compiled", help="directory to write into (default ./compiled)")
    compile_.add_argument("--image", help="the steps image every component and template runs, e.g. "
                          "registry.example/ml/meshserve-steps:0.1.0 (default ghcr.io/meshserve/steps:<version>)")
    compile_.set_defaults(handler=_cmd_compile)

    submit = commands.add_parser("submit", help="run train-to-serve on a KFP host or an Argo server",
                                 description="Tokens: $KFP_TOKEN / $ARGO_TOKEN or --token-file, never a flag.")
    submit.add_argument("--kfp", help="the KFP API host, e.g. http://ml-pipeline-ui.kubeflow")
    submit.add_argument("--argo", help="the Argo server, e.g. https://argo-server.argo:2746")
    submit.add_argument("--experiment", default="meshserve", help="KFP: the experiment (created if new)")
    submit.add_argument("--service-account", default="meshserve-steps", help="KFP: the run's ServiceAccount")
    submit.add_argument("--namespace", default="kubeflow", help="Argo: the WorkflowTemplate's namespace")
    submit.add_argument("-p", action="append", metavar="NAME=VALUE", help="a pipeline parameter (repeatable)")
    submit.add_argument("--token-file", default="", help="read the bearer token from this file")
    submit.add_argument("--ca-file", default="", help="trust the server's private CA (a PEM file) instead of this "
                        "machine's CAs")
    submit.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate "
                        "(warns; the token can reach anyone on the path)")
    submit.set_defaults(handler=_cmd_submit)
    return parser


# A path the user named that the system refuses (too long, missing, not a directory, no permission): theirs to fix.
_PATH_ERRORS = {errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EROFS, errno.ELOOP}


def _terminated(signum, frame) -> None:
    """SIGTERM takes the same way out as Ctrl-C, so what a command started is stopped or recorded."""
    raise KeyboardInterrupt


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed flags; a flag the command does not know is reported by that command's own parser."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        words = (args.command, getattr(args, "dataset_command", None), getattr(args, "local_command", None))
        command_parser(parser, words).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def command_parser(parser: argparse.ArgumentParser, words: Sequence[str | None]) -> argparse.ArgumentParser:
    """The parser of the (sub-)command the leading `words` name: `local status` gives local's status parser."""
    for word in words:
        choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
        if word not in choices:
            break
        parser = choices[word]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `meshserve` console script."""
    import signal

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if argv is None:  # the console script, not a caller's thread
        signal.signal(signal.SIGTERM, _terminated)
    args = _parse(build_parser(), argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return handler(args) or 0
    except MeshserveError as exc:
        print(scrub(f"meshserve {args.command}: error: {_one_line(str(exc))}"), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.filename is None or exc.errno not in _PATH_ERRORS:
            return _unexpected(args.command, exc)
        print(scrub(f"meshserve {args.command}: error: {_one_line(str(exc.filename))}: {exc.strerror}; pass a path "
                    "that exists and is readable (or writable, for an output)"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"meshserve {args.command}: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        if argv is None:  # the console script: what it started is stopped; leave with the documented code
            _exit_interrupted()
        return 130
    except Exception as exc:  # a bug, not the user's input: one line here, the traceback in a log file
        return _unexpected(args.command, exc)


def _exit_interrupted() -> None:
    """Exit 130 now. CPython exits by SIGINT instead, whatever the code, once a Ctrl-C has interrupted an
    extension module's own Python call (it records the interrupt as unhandled there), even after this
    command caught it and cleaned up; so run the exit handlers (multiprocessing's among them), flush and
    leave directly."""
    import atexit
    import gc

    gc.collect()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _one_line(text: str) -> str:
    """A message as one line: control characters (a newline a value carried) shown escaped."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


def _unexpected(command: str, exc: Exception) -> int:
    log = _log_unexpected(command, exc)
    print(f"meshserve {command}: unexpected error ({type(exc).__name__}); details in {log}", file=sys.stderr)
    return 1


def _log_unexpected(command: str, exc: Exception) -> Path:
    """Write the traceback, scrubbed of secrets, readable by this user only, under $MESHSERVE_STATE_DIR/logs (else
    the temp directory); return the file."""
    import tempfile
    import time
    import traceback

    from components.platform.state import state_dir

    for folder in (state_dir() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            log = folder / f"meshserve-{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(scrub("".join(traceback.format_exception(exc))))
            return log
        except OSError:
            continue
    return Path("(no writable log directory)")


if __name__ == "__main__":
    sys.exit(main())
