"""The meshserve-train-to-serve WorkflowTemplate's steps, run through Hera's runner in DAG order on the local platform.

Three runs: a first deploy (judged on its SLOs), a second version (analysed side by side with a fresh copy
of the primary), and a run whose analysis fails, after which the exit handler rolls the half-deployed
candidate back and no baseline copy is left.
"""

from __future__ import annotations

import json

import pytest
import yaml

from components.platform.local import LocalPlatform
from pipelines.compile import COMPILED_DIR
from tests.support.argo_dag import run_dag

POLICY = {"slo": {"max_p99_ms": 250.0, "min_accuracy": 0.9, "min_success_ratio": 0.99},
          "statistics": {"min_samples": 200}, "analysis": {"window_s": 2.0}, "on_inconclusive": "rollback"}
STEPS = ("train", "upload", "deploy", "analyze", "finish-rollout")


@pytest.fixture
def workflow():
    return yaml.safe_load((COMPILED_DIR / "train_to_serve.argo.yaml").read_text())


def arguments(seed: int, **changes) -> dict:
    return {"platform": "local", "seed": str(seed), "qps": "200", "budget-s": "8", "policy": json.dumps(POLICY),
            **changes}


def test_both_branches_and_the_exit_handler_through_hera_s_runner(workflow, isolated_state, tmp_path):
    env = {"MESHSERVE_STORAGE_SECRET_DIR": str(tmp_path / "no-secret")}
    platform = LocalPlatform()
    try:
        first = run_dag(workflow, arguments(seed=1), tmp_path / "run-1", env)
        assert [first.phases[t] for t in STEPS] == ["Succeeded"] * 5, first.logs
        assert first.phases["roll-back-on-failure"] == "Skipped"  # the run succeeded
        assert first.parameters["analyze"]["action"] == "promote", first.logs["analyze"]
        assert list(platform.status().model("digits").tracks()) == ["primary"]

        second = run_dag(workflow, arguments(seed=2), tmp_path / "run-2", env)
        assert [second.phases[t] for t in STEPS] == ["Succeeded"] * 5, second.logs
        action = second.parameters["analyze"]["action"]
        assert action in ("promote", "rollback")
        assert ("promoted" if action == "promote" else "rolled back") in second.logs["finish-rollout"]
        verdict = json.loads((second.artifacts["analyze"]["verdict"]).read_text())
        assert verdict["analysis"]["context"]["baseline"] == "copy"
        assert verdict["analysis"]["samples"]["baseline"] > 0
        assert list(platform.status().model("digits").tracks()) == ["primary"]  # the copy is gone

        failed = run_dag(workflow, arguments(seed=3, qps="-5"), tmp_path / "run-3", env)
        assert failed.phases["deploy"] == "Succeeded" and failed.phases["analyze"] == "Failed"
        assert failed.phases["finish-rollout"] == "Omitted"
        assert failed.phases["roll-back-on-failure"] == "Succeeded"
        assert "rolled back the unfinished candidate" in failed.logs["roll-back-on-failure"]
        assert list(platform.status().model("digits").tracks()) == ["primary"]
    finally:
        platform.down()
