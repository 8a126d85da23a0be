"""`meshserve rollout|resume|approve|wait|traffic`: progressive delivery from the command line.

`rollout` drives a deployed canary through the rollout policy's steps (deploy it first with --canary-percent 0);
running it again after it was killed, or `resume`, picks the rollout up where it stood. `wait` is for CI: it
exits 0 once the rollout is promoted, 3 when it was rolled back, 4 when it is held for a person, 5 when the
timeout passes first. `rollout` and `resume` exit with the same codes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from components.errors import InvalidInputError
from components.platform.protocol import ModelRef
from components.rollout.progress import FAILED, HELD, SUCCEEDED, Progress

EXIT_CODES = {SUCCEEDED: 0, FAILED: 3, HELD: 4}
TIMED_OUT = 5
EXIT_TEXT = "0 promoted, 3 rolled back, 4 held for a person"
MAX_WAIT_S = 86400.0


def add_rollout_commands(commands, platform_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """rollout, resume, approve, wait and traffic (`platform_flags` adds --platform, --kubeconfig, ...)."""
    rollout = commands.add_parser("rollout", help="take a deployed canary through traffic steps, guarded by live "
                                  "metrics, to promotion or rollback (resumes one under way)",
                                  description=f"Exit codes: {EXIT_TEXT}, 2 bad input.")
    _model_flags(rollout, platform_flags)
    rollout.add_argument("--rollout-policy", type=Path, help="YAML/JSON: steps, interval_s, guard, hooks, ... "
                         "(default: steps 10, 50, 100; docs/progressive.md)")
    rollout.add_argument("--policy", type=Path, help="the gate's policy for the step analyses (YAML/JSON)")
    rollout.add_argument("--protocol", default="", help="the analysis load's protocol (default: the runtime's own)")
    rollout.add_argument("--sample", default="digits", help="dataset whose rows the analysis load sends")
    rollout.add_argument("--qps", type=float, default=500.0, help="the analysis load's rate per side")
    rollout.add_argument("--budget", type=float, default=0.0, help="the analysis's budget in s per side "
                         "(0: the policy's)")
    _output_flags(rollout)
    rollout.set_defaults(handler=_cmd_rollout)
    resume = commands.add_parser("resume", help="resume a progressive rollout whose driver stopped, with the "
                                 "policies it was started with", description=f"Exit codes: {EXIT_TEXT}, 2 bad input.")
    _model_flags(resume, platform_flags)
    _output_flags(resume)
    resume.set_defaults(handler=_cmd_resume)
    approve = commands.add_parser("approve", help="open a progressive rollout's confirm-promotion gate")
    _model_flags(approve, platform_flags)
    approve.set_defaults(handler=_cmd_approve)
    wait = commands.add_parser("wait", help="wait for a progressive rollout to end: exit 0 promoted, 3 rolled "
                               "back, 4 held, 5 timed out",
                               description=f"Exit codes: {EXIT_TEXT}, {TIMED_OUT} timed out, 2 bad input.")
    wait.add_argument("name", help="the model")
    wait.add_argument("--namespace", default="default", help="kubernetes: the model's namespace")
    wait.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait at most (default 1800)")
    platform_flags(wait)
    wait.set_defaults(handler=_cmd_wait)
    traffic = commands.add_parser("traffic", help="send bounded production-like traffic (no track header) "
                                  "through the local router")
    traffic.add_argument("--name", required=True, help="the model")
    traffic.add_argument("--qps", type=float, default=50.0, help="requests a second (default 50)")
    traffic.add_argument("--duration", type=float, default=60.0, help="seconds (default 60, at most 3600)")
    traffic.add_argument("--sample", default="digits", help="dataset whose rows it sends")
    traffic.add_argument("--counts", type=Path, help="append each window's counts here (JSON lines)")
    traffic.set_defaults(handler=_cmd_traffic)


def _model_flags(parser: argparse.ArgumentParser, platform_flags) -> None:
    platform_flags(parser)
    parser.add_argument("--name", required=True, help="the model")
    parser.add_argument("--namespace", default="default", help="kubernetes: the model's namespace")


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="write the final progress (every step) as JSON")
    parser.add_argument("--html", type=Path, help="write the step-by-step HTML report")


def _cmd_rollout(args: argparse.Namespace) -> int:
    from components.gate.policy import load_policy
    from components.progressive.policy import load_rollout_policy
    from components.steps.analyze.core import Load, with_budget
    from components.steps.progressive.core import run_progressive_rollout
    from pipelines.platform_commands import check_platform_flags, cluster_access

    check_platform_flags(args)
    policy = load_rollout_policy(args.rollout_policy)
    gate = with_budget(load_policy(args.policy), args.budget)
    load = Load(protocol=args.protocol, model=args.name, sample=args.sample, qps=args.qps)
    outcome = run_progressive_rollout(args.name, policy, gate, load, platform=args.platform,
                                      namespace=args.namespace, cluster=cluster_access(args), report=_say)
    return _ended(outcome.progress, args)


def _cmd_resume(args: argparse.Namespace) -> int:
    from components.steps.progressive.core import run_resume
    from pipelines.platform_commands import check_platform_flags, cluster_access

    check_platform_flags(args)
    outcome = run_resume(args.name, platform=args.platform, namespace=args.namespace,
                         cluster=cluster_access(args), report=_say)
    return _ended(outcome.progress, args)


def _ended(progress: Progress, args: argparse.Namespace) -> int:
    from components.steps.progressive.core import step_table, write_progress

    print(step_table(progress), flush=True)
    if args.json:
        write_progress(progress, args.name, args.json, args.html)
    elif args.html:
        write_progress(progress, args.name, args.html.with_suffix(".json"), args.html)
    return EXIT_CODES.get(progress.phase, 1)


def _cmd_approve(args: argparse.Namespace) -> None:
    from pipelines.platform_commands import platform_of

    progress = platform_of(args).approve(ModelRef(args.name, args.namespace))
    print(f"approved: {args.name} {progress.version} will be promoted once its steps have passed")


def _cmd_wait(args: argparse.Namespace) -> int:
    from pipelines.platform_commands import platform_of

    if not 0 < args.timeout <= MAX_WAIT_S:
        raise InvalidInputError("timeout", f"{args.timeout} is out of range", f"pass 0 < --timeout <= {MAX_WAIT_S:g}")
    platform = platform_of(args)
    model = ModelRef(args.name, args.namespace)
    deadline = time.monotonic() + args.timeout
    while True:
        progress = platform.progress(model)
        if progress is None:
            raise InvalidInputError("name", f"{args.name} has no progressive rollout", "start one with "
                                    "`meshserve rollout`")
        if progress.finished:
            print(f"{args.name} {progress.version}: {progress.phase}: {progress.message}")
            return EXIT_CODES[progress.phase]
        if time.monotonic() >= deadline:
            print(f"{args.name} {progress.version}: still {progress.phase} at step {progress.step + 1} "
                  f"({progress.weight}%) after {args.timeout:g} s")
            return TIMED_OUT
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _cmd_traffic(args: argparse.Namespace) -> None:
    import tempfile

    from components.benchmark.background import MAX_QPS, MAX_SECONDS, read_counts, run_windows
    from components.platform.local import LocalPlatform

    if not 0 < args.qps <= MAX_QPS or not 0 < args.duration <= MAX_SECONDS:
        raise InvalidInputError("qps" if not 0 < args.qps <= MAX_QPS else "duration", "is out of range",
                                f"pass --qps up to {MAX_QPS:g} and --duration up to {MAX_SECONDS:g} s")
    counts = args.counts or Path(tempfile.mkstemp(suffix=".jsonl")[1])
    url = f"http://127.0.0.1:{LocalPlatform().router.ports()['http']}"
    run_windows(url, args.name, args.qps, args.duration, counts, args.sample, "kserve-v1")
    sent = read_counts(counts)
    errors = ", ".join(f"{kind} {count}" for kind, count in sent.errors.items()) or "no errors"
    print(f"sent {sent.total} requests to {args.name} through {url} in {sent.windows} windows: {errors}")


def _say(line: str) -> None:
    print(line, flush=True)
