"""Progressive rollouts on the local platform, for real: model-server processes behind nginx, the router's
per-request log turned into Istio's metrics and scraped by a real Prometheus, production-like background traffic
through the router, and candidates that really misbehave (a model failing 5% of its calls, a slower one).

One primary and one background load serve the whole module; each test rolls a canary out against them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.benchmark.background import BackgroundLoad, read_counts, start_background_load
from components.gate.policy import load_policy
from components.platform.local import LocalPlatform
from components.platform.protocol import ModelRef
from components.progressive.policy import rollout_policy_from_dict
from components.rollout.progress import FAILED, SUCCEEDED, WAITING_PROMOTION
from components.steps.analyze.core import Load
from components.steps.progressive.core import run_progressive_rollout, step_table
from tests.support.faulty_models import FlakyClassifier, SlowClassifier, publish_wrapped
from tests.support.webhooks import Webhooks, start_webhooks

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None or (shutil.which("prometheus") is None and not os.path.exists("/usr/bin/prometheus")),
    reason="needs nginx and Debian's prometheus: `make test` installs both")

REPO = Path(__file__).resolve().parents[1]
MODEL = ModelRef("digits")
INTERVAL_S = 3.0
POLICY = {"steps": [10, 50, 100], "interval_s": INTERVAL_S, "intervals_per_step": 2, "analysis_steps": [],
          "guard": {"min_requests": 5}}
BACKGROUND_QPS = 100.0


@dataclass
class Live:
    """The module's platform, its published models and its background load."""

    root: Path
    platform: LocalPlatform
    uris: dict[str, str]
    traffic: BackgroundLoad


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from components.storage import upload_model
    from components.training import TrainConfig, train_model

    work = tmp_path_factory.mktemp("progressive")
    root = work / "state"
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "MESHSERVE_STATE_DIR")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]]))  # faulty_models
    os.environ["MESHSERVE_STATE_DIR"] = str(root)
    platform = LocalPlatform(root)
    traffic = None
    try:
        trained = train_model(TrainConfig(framework="sklearn", dataset="digits", seed=0), work / "m0").model_dir
        uris = {"primary": upload_model(trained, "pvc://models/digits").storage_uri,
                "flaky": publish_wrapped(trained, work / "flaky", FlakyClassifier),
                "slow": publish_wrapped(trained, work / "slow", lambda inner: SlowClassifier(inner, 0.0003))}
        platform.deploy_version("digits", uris["primary"], version="primary")
        platform.promote(MODEL)
        platform.metrics_address()
        traffic = start_background_load(platform._router_url(), "digits", BACKGROUND_QPS, 900.0,
                                        work / "traffic.jsonl")
        yield Live(root, platform, uris, traffic)
    finally:
        if traffic is not None:
            traffic.stop()
        platform.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def state(live, monkeypatch):
    """The module's platform for one test; a canary the test left is rolled back after it."""
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(live.root))
    yield live
    if "canary" in live.platform.status().model("digits").tracks():
        live.platform.rollback(MODEL, take_over=True)


@pytest.fixture
def webhooks():
    receiver = start_webhooks()
    yield receiver
    receiver.stop()


def deploy_canary(live: Live, uri_key: str, version: str) -> None:
    live.platform.deploy_version("digits", live.uris[uri_key], 0, allow_same_model=True, version=version)


def roll_out(policy: dict | None = None, gate: dict | None = None, lines: list | None = None):
    said = lines if lines is not None else []
    outcome = run_progressive_rollout("digits", rollout_policy_from_dict({**POLICY, **(policy or {})}),
                                      load_policy(None, gate or {}), Load(model="digits", sample="digits", qps=300),
                                      report=said.append)
    print("\n" + step_table(outcome.progress))
    return outcome.progress


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 300), **kwargs)


def wait_until(condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError("timed out waiting")


def test_an_equal_model_moves_10_50_100_under_real_traffic_and_is_promoted(state):
    deploy_canary(state, "primary", "aa1")
    progress = roll_out()
    assert progress.phase == SUCCEEDED, progress.message
    assert [(step.weight, step.verdict) for step in progress.steps] == [(10, "pass"), (50, "pass"), (100, "pass")]
    for step in progress.steps:
        assert [reading["outcome"] for reading in step.guard] == ["pass", "pass"]
    canary_requests = [step.guard[-1]["requests"] for step in progress.steps]
    primary_requests = [step.guard[-1]["primary"]["requests"] or 0 for step in progress.steps]
    assert canary_requests[0] < canary_requests[1] < canary_requests[2]  # the weights really moved the traffic
    assert primary_requests[0] > primary_requests[1] > primary_requests[2] == 0
    assert state.platform.status().model("digits").tracks() == {"primary": "aa1"}


def test_a_candidate_failing_5_percent_of_real_requests_is_rolled_back_at_the_first_step(state):
    deploy_canary(state, "flaky", "flaky")
    progress = roll_out()
    assert progress.phase == FAILED
    assert len(progress.steps) == 1 and progress.steps[0].verdict == "fail"  # no later step ran
    step = progress.steps[0]
    assert "the live guard failed at step 1: success rate" in step.reason
    failing = step.guard[-1]
    assert failing["outcome"] == "fail" and len(step.guard) <= 2  # within two guard intervals
    assert failing["at"] - step.started <= 2 * INTERVAL_S + 3
    assert 90.0 <= failing["success_rate"] < 99.0
    assert state.platform.status().model("digits").tracks() == {"primary": "aa1"}
    waited = cli("wait", "digits", "--timeout", "5")
    assert waited.returncode == 3 and "Failed" in waited.stdout


def test_a_candidate_twice_as_slow_is_rolled_back_at_the_first_step(state):
    deploy_canary(state, "slow", "slow")
    progress = roll_out({"analysis_steps": [1]}, {"analysis": {"max_duration_s": 40}})
    assert progress.phase == FAILED
    assert len(progress.steps) == 1
    reason = progress.steps[0].reason
    assert "the analysis at step 1 failed" in reason or "the live guard failed" in reason, reason
    checks = {check["name"]: check for check in progress.steps[0].analysis["checks"]}
    assert checks["relative_p50"]["status"] == "fail", checks["relative_p50"]
    print(checks["relative_p50"]["detail"])


def test_an_unreachable_prometheus_never_promotes(state):
    from tests.support.servers import free_port

    deploy_canary(state, "primary", "blind")
    progress = roll_out({"guard": {"address": f"http://127.0.0.1:{free_port()}", "max_no_data": 2}})
    assert progress.phase == FAILED and len(progress.steps) == 1
    assert [reading["outcome"] for reading in progress.steps[0].guard] == ["error", "error"]
    assert "no data for 2 interval(s)" in progress.message and "cannot reach Prometheus" in progress.message


def test_a_failing_pre_rollout_hook_stops_before_any_traffic_moves(state, webhooks: Webhooks):
    webhooks.answers["/pre"] = 500
    deploy_canary(state, "primary", "aa2")
    progress = roll_out({"hooks": [{"name": "smoke", "kind": "pre-rollout", "url": f"{webhooks.url}/pre",
                                    "retries": 1, "timeout_s": 2},
                                   {"name": "chat", "kind": "event", "url": f"{webhooks.url}/events"}]})
    assert progress.phase == FAILED and progress.steps == [] and progress.weight == 0
    assert "no traffic was moved" in progress.message
    assert len(webhooks.to("/pre")) == 2  # the call and its one retry
    events = [call.body for call in webhooks.to("/events")]
    assert events[0]["metadata"]["eventType"] == "Normal" and "new rollout of aa2" in events[0]["text"]
    assert events[-1]["metadata"]["eventType"] == "Warning" and "pre-rollout hook smoke failed" in events[-1]["text"]
    assert {"name", "namespace", "phase", "metadata", "text"} <= set(events[-1])


def test_every_hook_kind_is_called_in_order_and_a_rollback_hook_s_yes_rolls_back(state, webhooks: Webhooks):
    webhooks.answers["/abort"] = 404  # "no": keep going
    deploy_canary(state, "primary", "aa3")
    hooks = [{"name": name, "kind": kind, "url": f"{webhooks.url}/{name}"}
             for name, kind in (("confirm", "confirm-rollout"), ("pre", "pre-rollout"), ("step", "rollout"),
                                ("abort", "rollback"), ("promotion", "confirm-promotion"), ("post", "post-rollout"),
                                ("events", "event"))]
    progress = roll_out({"hooks": hooks})
    assert progress.phase == SUCCEEDED, progress.message
    assert [call.body["weight"] for call in webhooks.to("/step")] == [10, 50, 100]
    assert len(webhooks.to("/abort")) >= 6  # asked every guard interval
    order = [call.path for call in webhooks.calls if call.path not in ("/abort", "/events")]
    assert order == ["/confirm", "/pre", "/step", "/step", "/step", "/promotion", "/post"]
    assert webhooks.to("/post")[0].body["phase"] == SUCCEEDED
    texts = [call.body["text"] for call in webhooks.to("/events")]
    assert any("canary weight 50" in text for text in texts) and "promoted" in texts[-1]

    webhooks.answers["/abort"] = 200  # a person pulls the plug
    deploy_canary(state, "primary", "aa4")
    aborted = roll_out({"hooks": [hooks[3]]})
    assert aborted.phase == FAILED and "rollback hook abort said yes" in aborted.message
    assert len(aborted.steps) == 1


def test_the_rollout_holds_at_confirm_promotion_until_approved(state, tmp_path):
    deploy_canary(state, "primary", "aa5")
    policy_file = tmp_path / "rollout.yaml"
    policy_file.write_text(json.dumps({**POLICY, "hooks": [{"name": "release-manager", "kind": "confirm-promotion"}],
                                       "approval_timeout_s": 300}))
    driver = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "rollout", "--name", "digits",
                               "--rollout-policy", str(policy_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        waiting = wait_until(lambda: (p := state.platform.progress(MODEL)) and p.phase == WAITING_PROMOTION and p)
        assert [step.verdict for step in waiting.steps] == ["pass", "pass", "pass"]
        time.sleep(2 * INTERVAL_S)
        held = state.platform.progress(MODEL)
        assert held.phase == WAITING_PROMOTION and not held.approved  # it holds
        assert state.platform.status().model("digits").tracks()["canary"] == "aa5"
        assert cli("wait", "digits", "--timeout", "1").returncode == 5  # still going: timed out
        approved = cli("approve", "--name", "digits")
        assert approved.returncode == 0, approved.stderr
        watched = cli("status", "--watch", timeout=120)
        assert watched.returncode == 0 and "progressive: aa5" in watched.stdout
        waited = cli("wait", "digits", "--timeout", "60")
        assert waited.returncode == 0 and "Succeeded" in waited.stdout
        assert driver.wait(timeout=60) == 0
        assert "approved (meshserve approve)" in driver.stdout.read()
    finally:
        if driver.poll() is None:
            driver.kill()
    assert state.platform.status().model("digits").tracks() == {"primary": "aa5"}


def kill_at_step(state, command: list[str], step: int) -> None:
    """Run the driver until it has read the guard once at `step` (0-based), then SIGKILL it."""
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: (p := state.platform.progress(MODEL)) and p.step == step and len(p.steps) == step + 1
                   and p.steps[step].guard)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()


def test_kill_9_at_step_2_then_the_same_command_resumes_at_step_2_and_no_request_fails(state, tmp_path):
    started = time.time()
    deploy_canary(state, "primary", "aa6")
    policy_file = tmp_path / "rollout.json"
    policy_file.write_text(json.dumps({**POLICY, "intervals_per_step": 3}))
    command = [sys.executable, "-m", "pipelines.cli", "rollout", "--name", "digits", "--rollout-policy",
               str(policy_file)]
    kill_at_step(state, command, 1)
    killed = state.platform.progress(MODEL)
    weights = {v.track: v.weight for v in state.platform.status().model("digits").versions}
    assert weights == {"primary": 50, "canary": 50}  # not half-routed: step 2's weights stay in force
    again = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:  # the same command picks it up at step 2; killed again at step 3, `meshserve resume` finishes it
        wait_until(lambda: (p := state.platform.progress(MODEL)) and p.step == 2 and len(p.steps) == 3
                   and p.steps[2].guard)
    finally:
        again.send_signal(signal.SIGKILL)
        output = again.communicate()[0]
    assert "resuming digits aa6 at step 2 of 3 (weight 50%)" in output
    resumed = cli("resume", "--name", "digits", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming digits aa6 at step 3 of 3 (weight 100%)" in resumed.stdout
    progress = state.platform.progress(MODEL)
    assert progress.phase == SUCCEEDED and progress.resumed == 2
    assert [step.index for step in progress.steps] == [0, 1, 2]  # never restarted at step 0
    assert progress.steps[1].guard[:len(killed.steps[1].guard)] == killed.steps[1].guard  # kept what it had read
    print(output + resumed.stdout)
    time.sleep(6)  # the background load's window under way ends
    sent = read_counts(state.traffic.counts_file, since=started)
    assert sent.total > 1000 and sent.failed == 0, sent
