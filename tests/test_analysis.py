"""The sequential analysis: its statistics, its stopping rules, and a real run on the local platform against a
fresh copy of the primary (started for the analysis, always removed)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from components.analysis import sequential as sq
from components.analysis.looks import LookPlan, Side, look_checks
from components.analysis.run import analyze
from components.errors import InvalidInputError
from components.gate.policy import SPENDING, GatePolicy, policy_from_dict
from components.platform.protocol import ModelRef
from tests.support.signals import default_sigint

QUIET = policy_from_dict({"statistics": {"instance_noise_pct": 0.0}})


def lognormal_window(rng, n=2500, factor=1.0, shared=None, error_every=0):
    """A window's result document: n latencies around 0.6 ms, times `factor`, times a per-block shared
    effect (the machine's moment, the same for both sides), every `error_every`-th request an error."""
    values = 0.6 * np.exp(rng.standard_normal(n) * 0.3) * factor
    if shared is not None:
        values *= np.repeat(shared, n // shared.size)
    errors = n // error_every if error_every else 0
    return {"samples_us": values * 1000, "counts": {"total": n, "by_error": {"http_500": errors} if errors else {}},
            "requested_qps": 500.0, "achieved_qps": 500.0, "measured_seconds": 5.0}


def synthetic(factor=1.0, error_every=0, seed=0):
    rng = np.random.default_rng(seed)

    def measure(seconds, warmup):
        shared = np.exp(rng.normal(0, 0.1, 10))
        return (lognormal_window(rng, factor=factor, shared=shared, error_every=error_every),
                lognormal_window(rng, shared=shared))

    return measure


def test_alpha_spending_adds_up_to_alpha_over_any_looks():
    for spending in SPENDING:
        for looks in (1, 7, 24):
            fractions = [k / looks for k in range(looks + 1)]
            spent = sum(sq.look_alpha(b, a, 0.05, spending) for a, b in zip(fractions, fractions[1:], strict=False))
            assert spent == pytest.approx(0.05, rel=1e-6)
    assert sq.spent(0.5, 0.05, "obrien-fleming") < sq.spent(0.5, 0.05, "pocock")  # spends late


def test_a_ratio_interval_covers_the_true_ratio_and_pairing_cancels_shared_noise():
    rng = np.random.default_rng(3)
    shared = np.exp(rng.normal(0, 0.3, 40))  # strong moment-to-moment effects, common to both sides
    blocks_c = [0.6 * 1.2 * s * np.exp(rng.standard_normal(250) * 0.3) for s in shared]
    blocks_b = [0.6 * s * np.exp(rng.standard_normal(250) * 0.3) for s in shared]
    paired = sq.ratio_estimate(sq.BlockedSample(tuple(blocks_c)), sq.BlockedSample(tuple(blocks_b)), 0.5)
    low, high = paired.bounds(sq.critical_value(0.025, 40))
    assert low < 1.2 < high
    shuffled = sq.ratio_estimate(sq.BlockedSample(tuple(blocks_c)),
                                 sq.BlockedSample(tuple(blocks_b[1:] + blocks_b[:1])), 0.5)
    assert paired.sampling_se < shuffled.sampling_se / 2  # unpaired moments do not cancel


def test_instance_noise_widens_a_ratio_but_not_with_more_samples():
    wide = sq.instance_se(2.0, 1)
    assert wide == pytest.approx(math.log1p(0.02) * math.sqrt(2))
    assert sq.instance_se(2.0, 4) == pytest.approx(wide / 2)  # more instances per side, not more time


def test_a_clear_regression_stops_at_the_first_look():
    analysis = analyze(synthetic(factor=1.5), QUIET, keep_windows=False)
    assert analysis.verdict.decision == "ROLLBACK" and len(analysis.looks) == 1
    assert "relative_p50" in [check.name for check in analysis.verdict.failed()]


def test_a_candidate_failing_one_percent_is_rolled_back_at_once():
    analysis = analyze(synthetic(error_every=100), QUIET, keep_windows=False)
    assert analysis.verdict.decision == "ROLLBACK" and len(analysis.looks) == 1
    assert [check.name for check in analysis.verdict.failed()] == ["candidate_success_ratio"]


def test_an_equal_candidate_promotes_before_the_budget():
    analysis = analyze(synthetic(), QUIET, keep_windows=False)
    assert analysis.verdict.decision == "PROMOTE"
    assert 1 < len(analysis.looks) < QUIET.analysis.planned_looks
    assert analysis.stopped.startswith("settled at look")
    assert [look.decision for look in analysis.looks[:-1]] == ["continue"] * (len(analysis.looks) - 1)


def outage(windows: set[int], candidate_too: bool = False, seed: int = 0):
    """Equal sides, but in `windows` (1-based) the baseline refuses half its requests (and the candidate too)."""
    rng, taken = np.random.default_rng(seed), []

    def measure(seconds, warmup):
        taken.append(len(taken) + 1)
        shared, down = np.exp(rng.normal(0, 0.1, 10)), taken[-1] in windows
        baseline = lognormal_window(rng, shared=shared, error_every=2 if down else 0)
        return lognormal_window(rng, shared=shared, error_every=2 if down and candidate_too else 0), baseline

    return measure


def test_windows_where_only_the_baseline_failed_are_set_aside_and_named():
    analysis = analyze(outage({2, 3}), QUIET, keep_windows=False)
    [aside] = [check for check in analysis.verdict.checks if check.name == "baseline_windows"]
    assert aside.value == 2 and aside.reason.startswith("window 2 set aside: the baseline answered 1250 of 2500 "
                                                        "requests at 500 qps (http_500 1250), the candidate 2500 of "
                                                        "2500 requests at 500 qps")
    assert "window 3 set aside" in aside.reason and "2 window(s) set aside" in analysis.stopped
    assert analysis.baseline is not None and analysis.baseline.error_count == 0  # the gap is in no evidence
    assert len(analysis.baseline.windows) == len(analysis.candidate.windows) == len(analysis.looks) - 2
    assert analysis.verdict.decision == "PROMOTE"  # decided by the clean windows, paired


def test_a_window_where_both_sides_failed_stays_and_the_candidate_s_failure_counts():
    analysis = analyze(outage({1}, candidate_too=True), QUIET, keep_windows=False)
    assert analysis.verdict.decision == "ROLLBACK" and len(analysis.looks) == 1
    assert [check.name for check in analysis.verdict.failed()] == ["candidate_success_ratio"]
    assert "baseline_windows" not in [check.name for check in analysis.verdict.checks]


def test_a_baseline_that_failed_over_the_whole_run_is_inconclusive_not_a_rollback():
    analysis = analyze(outage(set(range(1, 25))), policy_from_dict({"analysis": {"max_duration_s": 10.0}}),
                       keep_windows=False)
    assert analysis.verdict.decision == "INCONCLUSIVE" and analysis.verdict.failed() == []
    assert analysis.stopped.endswith("2 window(s) set aside, the baseline having failed in them")


def test_at_the_budget_it_is_inconclusive_and_says_what_would_settle_it():
    policy = policy_from_dict({"analysis": {"max_duration_s": 10.0}, "statistics": {"instance_noise_pct": 0.0}})
    analysis = analyze(synthetic(factor=1.1), policy, keep_windows=False)
    assert analysis.verdict.decision == "INCONCLUSIVE" and len(analysis.looks) == 2
    assert analysis.verdict.action == "rollback"  # inconclusive never promotes
    undecided = analysis.verdict.undecided()
    assert undecided and all(check.samples_needed for check in undecided if check.name.startswith("relative_"))


def test_a_check_held_open_by_instance_noise_says_so():
    policy = policy_from_dict({"statistics": {"instance_noise_pct": 6.0}, "analysis": {"max_duration_s": 10.0}})
    analysis = analyze(synthetic(), policy, keep_windows=False)
    assert analysis.verdict.decision == "INCONCLUSIVE"
    reasons = " ".join(check.reason for check in analysis.verdict.undecided())
    assert "instance noise" in reasons and "replicas per side" in reasons


def test_a_failed_accuracy_check_rolls_back_before_any_load():
    def never(seconds, warmup):
        raise AssertionError("no load may be sent")

    model = {"name": "m", "metrics": {"accuracy": 0.5}}
    analysis = analyze(never, policy_from_dict({"slo": {"min_accuracy": 0.9}}), candidate_model=model)
    assert analysis.verdict.decision == "ROLLBACK" and analysis.looks == []


def test_peeking_at_every_look_keeps_false_rollbacks_under_alpha():
    """200 A/A analyses of skewed, time-correlated latencies, each judged after every window."""
    decided = Counter(analyze(synthetic(seed=seed), QUIET, keep_windows=False).verdict.decision
                      for seed in range(200))
    assert decided["ROLLBACK"] / 200 <= 0.05
    assert decided["PROMOTE"] / 200 >= 0.9


def test_the_look_reports_every_check_with_its_interval():
    rng = np.random.default_rng(0)
    candidate, baseline = Side("candidate"), Side("baseline")
    for _ in range(2):
        c, b = lognormal_window(rng), lognormal_window(rng)
        candidate.add_window(c, 10)
        baseline.add_window(b, 10)
    plan = LookPlan.at(2, 10.0, 5.0, GatePolicy())
    checks = {check.name: check for check in look_checks(candidate, baseline, GatePolicy(), plan)}
    expected = {"relative_p50", "relative_p90", "relative_p99", "candidate_success_ratio", "baseline_samples"}
    assert expected <= set(checks)
    low, high = checks["relative_p50"].interval
    assert low < checks["relative_p50"].value < high


@pytest.mark.parametrize("section, key, value, message", [
    ("analysis", "spending", "linear", "is not allowed"),
    ("analysis", "baseline", "canary", "is not allowed"),
    ("analysis", "block_s", 9.0, "out of range"),
    ("analysis", "window_s", 0.5, "too many"),
    ("statistics", "instance_noise_p99_pct", float("nan"), "finite"),
])
def test_bad_analysis_policy_is_one_clear_error(section, key, value, message):
    with pytest.raises(InvalidInputError, match=message) as raised:
        policy_from_dict({section: {key: value}})
    assert str(raised.value).startswith(f"policy.{section}.{key}")


# --- on the local platform ----------------------------------------------------------------------------------

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx: `make test` installs it")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """digits served as primary, its own bytes published again under another version name."""
    from components.platform.local import LocalPlatform
    from components.storage import upload_model
    from components.training import TrainConfig, train_model

    root = tmp_path_factory.mktemp("analysis")
    saved = os.environ.get("MESHSERVE_STATE_DIR")
    os.environ["MESHSERVE_STATE_DIR"] = str(root)
    model = train_model(TrainConfig(framework="sklearn", dataset="digits"), root / "m").model_dir
    primary = upload_model(model, "pvc://models/digits").storage_uri
    again = upload_model(model, "pvc://models/digits", version="aa").storage_uri
    platform = LocalPlatform(root)
    platform.deploy_version("digits", primary)
    platform.promote(ModelRef("digits"))
    yield platform, again, root
    platform.down()
    if saved is None:
        os.environ.pop("MESHSERVE_STATE_DIR")
    else:
        os.environ["MESHSERVE_STATE_DIR"] = saved


@pytest.fixture
def aa_canary(served, monkeypatch):
    platform, again, root = served
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(root))
    platform.deploy_version("digits", again, 10, allow_same_model=True)
    yield platform
    if "canary" in tracks(platform):
        platform.rollback(ModelRef("digits"))


def tracks(platform) -> list[str]:
    model = platform.status().model("digits")
    return [v.track for v in model.versions] if model else []


@needs_nginx
def test_the_primary_s_own_model_is_refused_unless_allowed(served, monkeypatch):
    platform, again, root = served
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(root))
    with pytest.raises(InvalidInputError, match="already serves this model.*--allow-same-model"):
        platform.deploy_version("digits", again, 10)
    version = platform.deploy_version("digits", again, 10, allow_same_model=True)
    assert version.version == "aa"  # named as it was published
    platform.rollback(ModelRef("digits"))


@needs_nginx
def test_the_baseline_copy_takes_only_pinned_requests_and_goes_away(aa_canary):
    from components.steps.benchmark.core import run_benchmark_step

    platform = aa_canary
    sides = platform.start_baseline("digits")
    status = {v.track: v.instances[0] for v in platform.status().model("digits").versions}
    weights = {v.track: v.weight for v in platform.status().model("digits").versions}
    assert set(status) == {"primary", "canary", "baseline"} and weights["baseline"] == 0
    assert status["baseline"].pid not in (status["primary"].pid, status["canary"].pid)
    pinned = run_benchmark_step(sides.baseline_url, protocol="kserve-v1", model="digits", sample="digits",
                                headers=sides.baseline_headers, qps=50, duration=1.0)
    unpinned = run_benchmark_step(sides.candidate_url, protocol="kserve-v1", model="digits", sample="digits",
                                  qps=50, duration=1.0)
    assert pinned["success_ratio"] == 1.0 and unpinned["success_ratio"] == 1.0
    assert served_requests(status["baseline"]) >= pinned["counts"]["total"]
    assert served_requests(status["baseline"]) < pinned["counts"]["total"] + unpinned["counts"]["total"]
    platform.stop_baseline("digits")
    assert tracks(platform) == ["primary", "canary"]
    assert not _alive(status["baseline"].pid)


def served_requests(instance) -> int:
    """Predictions a model server counted (its Prometheus /metrics)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{instance.http}/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("request_predict_seconds_count")))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z")


@needs_nginx
def test_rollback_removes_a_copy_an_interrupted_analysis_left(aa_canary):
    platform = aa_canary
    platform.start_baseline("digits")
    pid = next(v.instances[0].pid for v in platform.status().model("digits").versions if v.track == "baseline")
    platform.rollback(ModelRef("digits"))
    assert tracks(platform) == ["primary"] and not _alive(pid)


@needs_nginx
def test_meshserve_analyze_decides_writes_its_trace_and_leaves_no_copy(aa_canary, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("analysis: {window_s: 1.0, warmup_s: 0.5}\nslo: {min_success_ratio: 0.99}\n"
                      "statistics: {min_samples: 200}\n")
    completed = subprocess.run([sys.executable, "-m", "pipelines.cli", "analyze", "--name", "digits", "--sample",
                                "digits", "--qps", "300", "--budget", "4s", "--policy", str(policy), "--json",
                                str(tmp_path / "v.json"), "--html", str(tmp_path / "v.html")],
                               capture_output=True, text=True, timeout=120, env=os.environ)
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert completed.returncode == {"PROMOTE": 0, "ROLLBACK": 3, "INCONCLUSIVE": 4}[verdict["decision"]], \
        completed.stderr
    trace = verdict["analysis"]
    assert trace["context"]["baseline"] == "copy" and trace["context"]["baseline_version"].endswith("-baseline")
    assert 1 <= trace["looks_taken"] <= 4 and trace["planned_looks"] == 4
    assert sum(line.startswith("look ") for line in completed.stdout.splitlines()) == trace["looks_taken"]
    assert trace["samples"]["baseline"] > 0
    assert "<img" in (tmp_path / "v.html").read_text()
    assert tracks(aa_canary) == ["primary", "canary"]


@needs_nginx
def test_an_interrupted_analysis_removes_its_copy(aa_canary, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "analyze", "--name", "digits", "--sample",
                                "digits", "--qps", "200", "--json", str(tmp_path / "v.json")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ,
                               preexec_fn=default_sigint)
    deadline = time.monotonic() + 60
    while "baseline" not in tracks(aa_canary) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "baseline" in tracks(aa_canary)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr
    assert tracks(aa_canary) == ["primary", "canary"]
    assert not (tmp_path / "v.json").exists()


def test_an_allowance_set_to_null_switches_its_check_off():
    policy = policy_from_dict({"relative": {"max_p90_increase_pct": None}, "statistics": {"instance_noise_pct": 0}})
    analysis = analyze(synthetic(), policy, keep_windows=False)
    names = {check.name for check in analysis.verdict.checks}
    assert "relative_p50" in names and "relative_p90" not in names
    with pytest.raises(InvalidInputError, match="policy.statistics.min_samples"):
        policy_from_dict({"statistics": {"min_samples": None}})  # not optional
