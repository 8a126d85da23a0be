"""The meshserve-train-to-serve WorkflowTemplate's steps, run through Hera's runner in DAG order on the local platform.

Three runs: a first deploy (judged on its SLOs), a second version (taken through traffic steps under
background traffic, analysed side by side with a fresh copy of the primary at the first), and a run whose
rollout step fails, after which the exit handler rolls the half-deployed candidate back and no baseline copy
is left.
"""

from __future__ import annotations

import json

import pytest
import yaml

from components.benchmark.background import start_background_load
from components.platform.local import LocalPlatform
from pipelines.compile import COMPILED_DIR
from tests.support.argo_dag import run_dag

POLICY = {"slo": {"max_p99_ms": 250.0, "min_accuracy": 0.9, "min_success_ratio": 0.99},
          "statistics": {"min_samples": 200}, "analysis": {"window_s": 2.0}, "on_inconclusive": "rollback"}
STEPS = ("train", "upload", "deploy", "progressive-rollout")
ROLLOUT = {"steps": [50, 100], "interval_s": 2.0, "intervals_per_step": 1, "guard": {"min_requests": 5}}


@pytest.fixture
def workflow():
    return yaml.safe_load((COMPILED_DIR / "train_to_serve.argo.yaml").read_text())


def arguments(seed: int, **changes) -> dict:
    return {"platform": "local", "seed": str(seed), "qps": "200", "budget-s": "8", "policy": json.dumps(POLICY),
            "rollout-policy": json.dumps(ROLLOUT), **changes}


def test_both_branches_and_the_exit_handler_through_hera_s_runner(workflow, isolated_state, tmp_path):
    env = {"MESHSERVE_STORAGE_SECRET_DIR": str(tmp_path / "no-secret")}
    platform = LocalPlatform()
    try:
        first = run_dag(workflow, arguments(seed=1), tmp_path / "run-1", env)
        assert [first.phases[t] for t in STEPS] == ["Succeeded"] * 4, first.logs
        assert first.phases["roll-back-on-failure"] == "Skipped"  # the run succeeded
        rollout = "progressive-rollout"
        assert first.parameters[rollout]["action"] == "promote", first.logs[rollout]
        assert list(platform.status().model("digits").tracks()) == ["primary"]

        traffic = start_background_load(platform._router_url(), "digits", 50, 300, tmp_path / "traffic.jsonl")
        try:
            second = run_dag(workflow, arguments(seed=2), tmp_path / "run-2", env)
        finally:
            traffic.stop()
        assert [second.phases[t] for t in STEPS] == ["Succeeded"] * 4, second.logs
        phase = second.parameters[rollout]["phase"]
        assert phase in ("Succeeded", "Failed"), second.logs[rollout]
        progress = json.loads((second.artifacts[rollout]["progress"]).read_text())
        assert progress["phase"] == phase and progress["steps"][0]["weight"] == 50
        assert progress["steps"][0]["guard"], "the live guard read the background traffic"
        verdict = json.loads((second.artifacts[rollout]["verdict"]).read_text())
        assert verdict["analysis"]["context"]["baseline"] == "copy"
        assert verdict["analysis"]["samples"]["baseline"] > 0
        assert list(platform.status().model("digits").tracks()) == ["primary"]  # the copy is gone

        failed = run_dag(workflow, arguments(seed=3, qps="-5"), tmp_path / "run-3", env)
        assert failed.phases["deploy"] == "Succeeded" and failed.phases[rollout] == "Failed"
        assert failed.phases["roll-back-on-failure"] == "Succeeded"
        assert "rolled back the unfinished candidate" in failed.logs["roll-back-on-failure"]
        assert list(platform.status().model("digits").tracks()) == ["primary"]
    finally:
        platform.down()
