"""The promotion gate: its statistics, its decisions, failing closed, and its three wrappers."""

import json
from pathlib import Path

import numpy as np
import pytest

from components.errors import InvalidInputError
from components.gate import statistics as st
from components.gate.decision import INCONCLUSIVE, PROMOTE, ROLLBACK, decide
from components.gate.policy import load_policy, policy_from_dict
from tests.support.results import result_document
from tests.test_cli import assert_one_line_error, meshserve

RNG = np.random.default_rng(42)


def lognormal(n=6000, median=2.0, sigma=0.3, scale=1.0, seed=None):
    rng = np.random.default_rng(seed) if seed is not None else RNG
    return rng.lognormal(np.log(median), sigma, n) * scale


def write(tmp_path, name, document):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def verdict_for(tmp_path, candidate_ms, baseline_ms=None, policy=None, **model):
    candidate = write(tmp_path, "candidate.json", result_document(candidate_ms))
    baseline = write(tmp_path, "baseline.json", result_document(baseline_ms)) if baseline_ms is not None else None
    return decide(candidate, baseline, policy, **model)


def status(verdict, name):
    return next(check.status for check in verdict.checks if check.name == name)


# statistics

def test_sample_quantile_is_the_inverted_cdf_order_statistic():
    values = np.sort(RNG.random(1001))
    for q in (0.5, 0.9, 0.99):
        assert st.sample_quantile(values, q) == np.quantile(values, q, method="inverted_cdf")


def test_exact_quantile_bootstrap_matches_resampling():
    values = np.sort(lognormal(400, seed=1))
    rng = np.random.default_rng(0)
    exact = st.bootstrap_quantiles(values, 0.9, 20000, rng)
    resampled = np.quantile(rng.choice(values, size=(4000, values.size)), 0.9, axis=1, method="inverted_cdf")
    for level in (0.025, 0.5, 0.975):
        assert np.quantile(exact, level) == pytest.approx(np.quantile(resampled, level), rel=0.02)


def test_ratio_interval_covers_the_true_ratio():
    covered = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        a, b = np.sort(rng.lognormal(0, 0.4, 2000)) * 1.2, np.sort(rng.lognormal(0, 0.4, 2000))
        interval = st.ratio_interval(a, b, 0.9, 0.95, 2000, rng)
        covered += interval.low <= 1.2 <= interval.high
    assert covered >= 88  # nominal 95; allow for 100 trials


def test_block_bootstrap_sees_noise_correlated_in_time_that_the_iid_bootstrap_misses():
    """Each second of the candidate's run is offset by its own few percent (a GC pause, a noisy neighbour):
    requests within a second are not independent, and only resampling whole windows shows how little
    one run says."""
    rng = np.random.default_rng(7)
    offsets = np.repeat(rng.normal(0, 0.05, 20), 250)
    candidate, baseline = rng.lognormal(0, 0.2, 5000) * np.exp(offsets), rng.lognormal(0, 0.2, 5000)
    iid = st.ratio_interval(np.sort(candidate), np.sort(baseline), 0.5, 0.95, 2000, rng)
    block = st.block_ratio_interval(candidate, baseline, 0.5, 0.95, st.window_draws(20, 2000, rng))
    assert block.high - block.low > 2 * (iid.high - iid.low)


def test_block_bootstrap_cancels_noise_both_sides_share():
    """Both versions measured side by side see the same slow seconds: drawn together, those cancel."""
    rng = np.random.default_rng(8)
    shared = np.exp(np.repeat(rng.normal(0, 0.2, 20), 250))
    candidate, baseline = rng.lognormal(0, 0.1, 5000) * shared, rng.lognormal(0, 0.1, 5000) * shared
    paired = st.block_ratio_interval(candidate, baseline, 0.9, 0.95, st.window_draws(20, 2000, rng))
    unpaired = st.block_ratio_interval(candidate, baseline[::-1], 0.9, 0.95, st.window_draws(20, 2000, rng))
    assert paired.low < 1 < paired.high and paired.high - paired.low < 0.5 * (unpaired.high - unpaired.low)


def test_instance_noise_keeps_a_small_process_offset_from_rolling_back(tmp_path):
    """Two processes of the same model can differ by a few percent all run long; a 12% difference with
    instance noise of 4.5% each is not a significant regression, a 30% one is."""
    same_process_offset = lognormal(seed=1, scale=1.12), lognormal(seed=2)
    ignoring, noisy = (policy_from_dict({"statistics": {"instance_noise_pct": pct}}) for pct in (0, 4.5))
    assert status(verdict_for(tmp_path, *same_process_offset, policy=ignoring), "relative_p50") == "fail"
    assert status(verdict_for(tmp_path, *same_process_offset, policy=noisy), "relative_p50") == "inconclusive"
    assert verdict_for(tmp_path, lognormal(seed=1, scale=1.3), lognormal(seed=2), policy=noisy).decision == ROLLBACK


# decisions

def test_identical_candidate_is_promoted(tmp_path):
    verdict = verdict_for(tmp_path, lognormal(seed=1), lognormal(seed=2))
    assert verdict.decision == PROMOTE and verdict.action == "promote", verdict.summary()


def test_uniform_slowdown_is_rolled_back(tmp_path):
    verdict = verdict_for(tmp_path, lognormal(seed=1, scale=1.3), lognormal(seed=2))
    assert verdict.decision == ROLLBACK
    assert {"relative_p50", "relative_p99", "mann_whitney"} <= {c.name for c in verdict.failed()}


def test_variance_only_regression_is_caught_though_mann_whitney_passes(tmp_path):
    verdict = verdict_for(tmp_path, lognormal(seed=1, sigma=0.45), lognormal(seed=2, sigma=0.3))
    assert verdict.decision == ROLLBACK
    assert status(verdict, "mann_whitney") == "pass"  # the medians agree: MW alone would promote
    assert status(verdict, "tail_spread") == "fail" and status(verdict, "relative_p99") == "fail"


def test_too_few_samples_is_inconclusive_and_says_how_many(tmp_path):
    verdict = verdict_for(tmp_path, lognormal(300, seed=1), lognormal(300, seed=2))
    assert verdict.decision == INCONCLUSIVE and verdict.action == "rollback"
    check = next(c for c in verdict.checks if c.name == "candidate_samples")
    assert check.samples_needed == 1000


def test_a_noisy_close_call_is_inconclusive_with_a_sample_estimate(tmp_path):
    policy = policy_from_dict({"statistics": {"min_samples": 100}, "on_inconclusive": "hold"})
    verdict = verdict_for(tmp_path, lognormal(400, seed=3, scale=1.05), lognormal(400, seed=4), policy)
    assert verdict.decision == INCONCLUSIVE and verdict.action == "hold", verdict.summary()
    undecided = verdict.undecided()
    assert undecided and all(c.samples_needed and c.samples_needed > 400 for c in undecided)


def test_absolute_slos_alone(tmp_path):
    fast = verdict_for(tmp_path, lognormal(seed=5), policy=load_policy(overrides={"slo.max_p99_ms": 10}))
    slow = verdict_for(tmp_path, lognormal(seed=5), policy=load_policy(overrides={"slo.max_p99_ms": 2.5}))
    assert fast.decision == PROMOTE and slow.decision == ROLLBACK
    assert [c.name for c in slow.failed()] == ["slo_p99"]


def test_histogram_only_results_decide_like_samples(tmp_path):
    candidate, baseline = lognormal(seed=1, scale=1.3), lognormal(seed=2)
    with_samples = verdict_for(tmp_path, candidate, baseline)
    c = write(tmp_path, "c.json", result_document(candidate, keep_samples=False))
    b = write(tmp_path, "b.json", result_document(baseline, keep_samples=False))
    without = decide(c, b)
    assert without.decision == with_samples.decision == ROLLBACK
    ratio = lambda v: next(k.value for k in v.checks if k.name == "relative_p50")  # noqa: E731
    assert ratio(without) == pytest.approx(ratio(with_samples), rel=2e-3)


def test_accuracy_against_slo_and_baseline(tmp_path):
    policy = load_policy(overrides={"slo.min_accuracy": 0.9})
    good = {"candidate_model": {"metrics": {"accuracy": 0.95}}, "baseline_model": {"metrics": {"accuracy": 0.95}}}
    worse = {"candidate_model": {"metrics": {"accuracy": 0.92}}, "baseline_model": {"metrics": {"accuracy": 0.95}}}
    same = lognormal(seed=1), lognormal(seed=2)
    assert verdict_for(tmp_path, *same, policy, **good).decision == PROMOTE
    verdict = verdict_for(tmp_path, *same, policy, **worse)
    assert [c.name for c in verdict.failed()] == ["relative_accuracy"]
    assert verdict_for(tmp_path, *same, policy).decision == ROLLBACK  # no metrics: fail closed


# failing closed

@pytest.mark.parametrize("content, reason", [
    (None, "does not exist"),
    ("{not json", "is not strict JSON"),
    ('{"schema": 1, "schema": 2}', "duplicate key"),
    ('{"schema": "meshserve.benchmark-result/v1"}', "breaks the result schema"),
    ("[1, 2]", "is not a benchmark result"),
])
def test_unusable_results_never_promote(tmp_path, content, reason):
    path = tmp_path / "candidate.json"
    if content is not None:
        path.write_text(content)
    verdict = decide(path)
    assert verdict.decision == ROLLBACK and reason in verdict.failed()[0].reason


def test_empty_result_never_promotes(tmp_path):
    document = result_document(lognormal(10))
    document["counts"].update(total=0, success=0, by_status={})
    document["samples_us"] = []
    from components.benchmark.histogram import LatencyHistogram

    document["histogram"]["data"] = LatencyHistogram().encode()
    assert "holds no measured requests" in decide(write(tmp_path, "c.json", document)).summary()


def test_errors_and_rate_shortfall_roll_back(tmp_path):
    errors = write(tmp_path, "e.json", result_document(lognormal(seed=1), errors=20))
    short = write(tmp_path, "s.json", result_document(lognormal(seed=1), achieved_factor=0.9))
    assert [c.name for c in decide(errors).failed()] == ["candidate_success_ratio"]
    assert [c.name for c in decide(short).failed()] == ["candidate_achieved_rate"]


def test_results_measured_differently_are_not_compared(tmp_path):
    candidate = write(tmp_path, "c.json", result_document(lognormal(seed=1), protocol="v2-rest"))
    baseline = write(tmp_path, "b.json", result_document(lognormal(seed=2), protocol="kserve-v1"))
    verdict = decide(candidate, baseline)
    assert verdict.decision == ROLLBACK
    assert "measured with protocol 'kserve-v1' but the candidate with 'v2-rest'" in verdict.summary()


# policy input

def test_policy_file_and_overrides(tmp_path):
    (tmp_path / "p.yaml").write_text("slo:\n  max_p99_ms: 40\nrelative:\n  max_p99_increase_pct: 15\n")
    policy = load_policy(tmp_path / "p.yaml", {"slo.max_p99_ms": 30, "on_inconclusive": "hold"})
    assert (policy.slo.max_p99_ms, policy.relative.max_p99_increase_pct, policy.on_inconclusive) == (30, 15, "hold")
    (tmp_path / "p.json").write_text('{"statistics": {"confidence": 0.99}}')
    assert load_policy(tmp_path / "p.json").statistics.confidence == 0.99


@pytest.mark.parametrize("data, message", [
    ({"slo": {"max_p95_ms": 3}}, r"^policy.slo.max_p95_ms: unknown key"),
    ({"slo": {"max_p99_ms": "fast"}}, r"^policy.slo.max_p99_ms: 'fast' is not a number"),
    ({"relative": {"max_p99_increase_pct": -5}}, r"^policy.relative.max_p99_increase_pct: must be positive"),
    ({"statistics": {"min_samples": 2.5}}, r"^policy.statistics.min_samples: 2.5 is not a whole number"),
    ({"statistics": {"confidence": 1.5}}, r"^policy.statistics.confidence: must be a fraction"),
    ({"slo": {"min_success_ratio": True}}, r"^policy.slo.min_success_ratio: True is not a number"),
    ({"gates": {}}, r"^policy.gates: unknown key"),
])
def test_bad_policies_name_the_key(data, message):
    with pytest.raises(InvalidInputError, match=message):
        policy_from_dict(data)


# the command line

@pytest.fixture
def results(tmp_path):
    same = write(tmp_path, "same.json", result_document(lognormal(seed=2)))
    base = write(tmp_path, "base.json", result_document(lognormal(seed=1)))
    slow = write(tmp_path, "slow.json", result_document(lognormal(seed=3, scale=1.5)))
    few = write(tmp_path, "few.json", result_document(lognormal(200, seed=4)))
    return {"same": same, "base": base, "slow": slow, "few": few}


@pytest.mark.parametrize("candidate, code, decision", [("same", 0, "PROMOTE"), ("slow", 3, "ROLLBACK"),
                                                       ("few", 4, "INCONCLUSIVE")])
def test_cli_exit_codes_and_outputs(results, tmp_path, candidate, code, decision):
    completed = meshserve("gate", "--candidate", str(results[candidate]), "--baseline", str(results["base"]),
                          "--json", str(tmp_path / "v.json"), "--html", str(tmp_path / "v.html"),
                          "--markdown", str(tmp_path / "v.md"))
    assert completed.returncode == code, completed.stderr
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["decision"] == decision and f"**{decision}**" in completed.stdout
    assert "data:image/png;base64," in (tmp_path / "v.html").read_text()
    assert "| relative_p99 |" in (tmp_path / "v.md").read_text()
    assert all({"name", "status", "value", "threshold", "reason", "interval"} <= set(c) for c in verdict["checks"])


def test_cli_bad_policy_is_exit_2(results, tmp_path):
    (tmp_path / "p.yaml").write_text("slo:\n  max_p95_ms: 3\n")
    completed = meshserve("gate", "--candidate", str(results["same"]), "--policy", str(tmp_path / "p.yaml"))
    assert_one_line_error(completed, "policy.slo.max_p95_ms: unknown key")
    assert_one_line_error(meshserve("gate", "--candidate", str(results["same"]), "--max-p99-ms", "-3"),
                          "policy.slo.max_p99_ms: must be positive")


# the KFP component and the Hera template

def test_kfp_pipeline_branches_on_the_decision(results, isolated_state):
    from kfp import dsl, local

    from components.steps.gate.kfp_component import gate

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(isolated_state / "kfp"),
               raise_on_error=True)

    @dsl.component(base_image="python:3.11")
    def record(decision: str, branch: str) -> str:
        return f"{branch}:{decision}"

    @dsl.pipeline
    def decide_and_branch(candidate: str, baseline: str) -> str:
        cand = dsl.importer(artifact_uri=candidate, artifact_class=dsl.Artifact, reimport=False)
        base = dsl.importer(artifact_uri=baseline, artifact_class=dsl.Artifact, reimport=False)
        decided = gate(candidate_result=cand.output, baseline_result=base.output)
        with dsl.If(decided.outputs["decision"] == "PROMOTE"):
            promoted = record(decision=decided.outputs["decision"], branch="promote")
        with dsl.Else():
            rolled = record(decision=decided.outputs["decision"], branch="rollback")
        return dsl.OneOf(promoted.output, rolled.output)

    assert decide_and_branch(candidate=str(results["same"]), baseline=str(results["base"])).output == \
        "promote:PROMOTE"
    assert decide_and_branch(candidate=str(results["slow"]), baseline=str(results["base"])).output == \
        "rollback:ROLLBACK"


def test_gate_template_through_the_hera_runner(results, tmp_path):
    import shutil

    from tests.test_hera_runner import run_workflow_template

    for name, source in (("candidate", results["slow"]), ("baseline", results["base"])):
        Path("/tmp/meshserve").mkdir(exist_ok=True)
        shutil.copy(source, f"/tmp/meshserve/{name}.json")
    try:
        completed = run_workflow_template("gate", "gate", {}, tmp_path)
    finally:
        for name in ("candidate", "baseline"):
            Path(f"/tmp/meshserve/{name}.json").unlink(missing_ok=True)
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "parameters" / "decision").read_text() == "ROLLBACK"
    assert (tmp_path / "parameters" / "action").read_text() == "rollback"
    assert json.loads((tmp_path / "artifacts" / "verdict").read_text())["decision"] == "ROLLBACK"
