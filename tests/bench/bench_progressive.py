"""Progressive rollouts on the local platform, measured: the issue's goals as step-by-step tables and counts.

Under background traffic through the router (100 qps, no track header), against a primary (digits SVM):
- equal: the primary's own model as the canary, 10 -> 50 -> 100 with the side-by-side analysis at the first
  step (the gate's default policy, 5 s guard intervals, two per step): how many trials promote;
- flaky: a candidate failing 5% of its calls: how many are rolled back at the first step, and how many guard
  intervals after the failures began;
- slow: a candidate about twice as slow: how many are rolled back at the first step, and by what;
- resume: the driver killed with SIGKILL at step 2, then the same command: where it resumed, and how many
  background requests failed from the kill to the end;
- approval: a confirm-promotion gate held until `meshserve approve`; every hook request recorded.

Run: `.venv/bin/python tests/bench/bench_progressive.py [--trials 5] [--phases equal,flaky,slow,resume,approval]`
(needs nginx and Debian's prometheus: `make test` installs them). Loads are bounded and stay on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from components.benchmark.background import read_counts, start_background_load  # noqa: E402
from components.gate.policy import load_policy  # noqa: E402
from components.platform.local import LocalPlatform  # noqa: E402
from components.platform.protocol import ModelRef  # noqa: E402
from components.progressive.policy import rollout_policy_from_dict  # noqa: E402
from components.rollout.progress import FAILED, SUCCEEDED, WAITING_PROMOTION  # noqa: E402
from components.steps.analyze.core import Load  # noqa: E402
from components.steps.progressive.core import run_progressive_rollout, step_table  # noqa: E402
from tests.support.faulty_models import FlakyClassifier, SlowClassifier, publish_wrapped  # noqa: E402
from tests.support.prometheus_server import prometheus_version  # noqa: E402
from tests.support.webhooks import start_webhooks  # noqa: E402

PHASES = ("equal", "flaky", "slow", "resume", "approval")
MODEL = ModelRef("digits")
INTERVAL_S = 5.0
POLICY = {"steps": [10, 50, 100], "interval_s": INTERVAL_S, "intervals_per_step": 2}
BACKGROUND_QPS = 100.0
CLI = [sys.executable, "-m", "pipelines.cli"]


def setup(work: Path) -> tuple[LocalPlatform, dict[str, str]]:
    """The primary serving, telemetry up, and the candidates published."""
    from components.storage import upload_model
    from components.training import TrainConfig, train_model

    trained = train_model(TrainConfig(framework="sklearn", dataset="digits", seed=0), work / "m0").model_dir
    uris = {"equal": upload_model(trained, "pvc://models/digits").storage_uri,
            "flaky": publish_wrapped(trained, work / "flaky", FlakyClassifier),
            "slow": publish_wrapped(trained, work / "slow", lambda inner: SlowClassifier(inner, 0.0003))}
    platform = LocalPlatform()
    platform.deploy_version("digits", uris["equal"], version="primary")
    platform.promote(MODEL)
    print(f"live guard: {prometheus_version()} at {platform.metrics_address()}")
    return platform, uris


def trial(platform: LocalPlatform, uri: str, version: str, policy: dict | None = None):
    platform.deploy_version("digits", uri, 0, allow_same_model=True, version=version)
    outcome = run_progressive_rollout("digits", rollout_policy_from_dict({**POLICY, **(policy or {})}), load_policy(),
                                      Load(model="digits", sample="digits"), report=lambda line: None)
    return outcome.progress


def equal(platform: LocalPlatform, uris: dict, trials: int) -> None:
    print(f"\n## equal model, 10 -> 50 -> 100, analysis at step 1 (default gate policy), {trials} trials")
    promoted = 0
    for index in range(trials):
        progress = trial(platform, uris["equal"], f"equal{index}")
        promoted += progress.phase == SUCCEEDED
        if index == 0:
            print(step_table(progress))
        analysis = progress.steps[0].analysis or {}
        print(f"trial {index + 1}: {progress.phase}; analysis {analysis.get('decision')} after "
              f"{analysis.get('looks')} look(s); {progress.message}")
    print(f"equal model promoted in {promoted}/{trials} trials")


def flaky(platform: LocalPlatform, uris: dict, trials: int) -> None:
    print(f"\n## candidate failing 5% of its calls, guard only (no analysis), {trials} trials")
    at_first, intervals = 0, []
    for index in range(trials):
        progress = trial(platform, uris["flaky"], f"flaky{index}", {"analysis_steps": []})
        step = progress.steps[0]
        at_first += progress.phase == FAILED and len(progress.steps) == 1
        failing = next((n for n, reading in enumerate(step.guard, 1) if reading["outcome"] == "fail"), None)
        intervals.append(failing)
        if index == 0:
            print(step_table(progress))
        print(f"trial {index + 1}: {progress.phase} at step {len(progress.steps)}; failed at guard interval "
              f"{failing} ({step.guard[-1]['at'] - step.started:.1f} s after the step began)")
    print(f"rolled back at the first step in {at_first}/{trials}; within two guard intervals in "
          f"{sum(1 for n in intervals if n is not None and n <= 2)}/{trials}")


def slow(platform: LocalPlatform, uris: dict, trials: int) -> None:
    print(f"\n## candidate about 2x slower, analysis at step 1, {trials} trials")
    at_first = 0
    for index in range(trials):
        progress = trial(platform, uris["slow"], f"slow{index}")
        at_first += progress.phase == FAILED and len(progress.steps) == 1
        checks = {check["name"]: check for check in (progress.steps[0].analysis or {}).get("checks", [])}
        if index == 0:
            print(step_table(progress))
        print(f"trial {index + 1}: {progress.phase} at step {len(progress.steps)}; "
              f"relative_p50: {checks.get('relative_p50', {}).get('detail', '-')}")
    print(f"rolled back at the first step in {at_first}/{trials}")


def resume(platform: LocalPlatform, uris: dict, work: Path, counts: Path) -> None:
    print("\n## kill -9 at step 2, then the same command")
    platform.deploy_version("digits", uris["equal"], 0, allow_same_model=True, version="v-killed")
    policy_file = work / "rollout.json"
    policy_file.write_text(json.dumps({**POLICY, "analysis_steps": []}))
    command = CLI + ["rollout", "--name", "digits", "--rollout-policy", str(policy_file)]
    started = time.time()
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while True:
        progress = platform.progress(MODEL)
        if progress and progress.step == 1 and len(progress.steps) == 2 and progress.steps[1].guard:
            break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    output = first.communicate()[0]
    killed_at = time.time()
    print("first driver, killed:\n  " + output.strip().replace("\n", "\n  "))
    weights = {v.track: v.weight for v in platform.status().model("digits").versions}
    print(f"after the kill: weights {weights}")
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    print(f"the same command again (exit {again.returncode}):\n  " + again.stdout.strip().replace("\n", "\n  "))
    time.sleep(WINDOW_WAIT_S)
    during = read_counts(counts, since=killed_at - 5)
    whole = read_counts(counts, since=started)
    print(f"background traffic from the kill to the end: {during.total} requests, {during.failed} failed; "
          f"over the whole rollout {whole.total} requests, {whole.failed} failed")


WINDOW_WAIT_S = 6.0  # the background load's window under way ends and is written


def approval(platform: LocalPlatform, uris: dict, work: Path) -> None:
    print("\n## manual approval at confirm-promotion, with every hook kind recorded")
    hooks = start_webhooks()
    kinds = (("confirm", "confirm-rollout"), ("pre", "pre-rollout"), ("step", "rollout"), ("abort", "rollback"),
             ("post", "post-rollout"), ("events", "event"))
    hooks.answers["/abort"] = 404
    policy = {**POLICY, "analysis_steps": [], "approval_timeout_s": 600,
              "hooks": [{"name": name, "kind": kind, "url": f"{hooks.url}/{name}"} for name, kind in kinds]
              + [{"name": "release-manager", "kind": "confirm-promotion"}]}
    (work / "approval.json").write_text(json.dumps(policy))
    platform.deploy_version("digits", uris["equal"], 0, allow_same_model=True, version="v-approval")
    driver = subprocess.Popen(CLI + ["rollout", "--name", "digits", "--rollout-policy", str(work / "approval.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while (progress := platform.progress(MODEL)) is None or progress.phase != WAITING_PROMOTION:
        time.sleep(0.2)
    waiting_since = time.time()
    time.sleep(3 * INTERVAL_S)
    held = platform.progress(MODEL)
    print(f"held {time.time() - waiting_since:.0f} s at {held.phase} (canary at {held.weight}%, approved "
          f"{held.approved})")
    approve = subprocess.run(CLI + ["approve", "--name", "digits"], capture_output=True, text=True)
    print(approve.stdout.strip())
    waited = subprocess.run(CLI + ["wait", "digits", "--timeout", "120"], capture_output=True, text=True)
    print(f"meshserve wait: exit {waited.returncode}: {waited.stdout.strip()}")
    driver.wait(timeout=120)
    print("hook requests, in order:")
    for call in hooks.calls:
        body = {key: call.body[key] for key in ("phase", "step", "weight") if key in call.body}
        text = f" text={call.body['text']!r}" if "text" in call.body else ""
        print(f"  POST {call.path:8} {json.dumps(body)}{text}")
    hooks.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--phases", default=",".join(PHASES))
    args = parser.parse_args()
    phases = args.phases.split(",")
    work = Path(tempfile.mkdtemp(prefix="meshserve-bench-progressive-"))
    os.environ["MESHSERVE_STATE_DIR"] = str(work / "state")
    platform, uris = setup(work)
    counts = work / "traffic.jsonl"
    traffic = start_background_load(platform._router_url(), "digits", BACKGROUND_QPS, 3600, counts)
    try:
        if "equal" in phases:
            equal(platform, uris, args.trials)
        if "flaky" in phases:
            flaky(platform, uris, args.trials)
        if "slow" in phases:
            slow(platform, uris, args.trials)
        if "resume" in phases:
            resume(platform, uris, work, counts)
        if "approval" in phases:
            approval(platform, uris, work)
    finally:
        sent = traffic.stop()
        print(f"\nbackground traffic over the whole bench: {sent.total} requests, {sent.failed} failed "
              f"({', '.join(f'{k} {v}' for k, v in sent.errors.items()) or 'none'})")
        platform.down()


if __name__ == "__main__":
    main()
