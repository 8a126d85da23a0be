"""The meshserve-train-to-serve WorkflowTemplate's steps, run through Hera's runner in DAG order on the local platform.

Three runs: a first deploy (the first-deploy branch), a second version (side by side with the primary),
and a run whose benchmark fails, after which the exit handler rolls the half-deployed candidate back.
"""

from __future__ import annotations

import json

import pytest
import yaml

from components.platform.local import LocalPlatform
from pipelines.compile import COMPILED_DIR
from tests.support.argo_dag import run_dag

POLICY = {"slo": {"max_p99_ms": 250.0, "min_accuracy": 0.9}, "statistics": {"min_samples": 200},
          "on_inconclusive": "rollback"}
FIRST_DEPLOY = {"benchmark-pair": "Skipped", "gate-vs-baseline": "Omitted", "finish-vs-baseline": "Omitted",
                "benchmark-candidate": "Succeeded", "gate-on-slos": "Succeeded", "finish-first-deploy": "Succeeded"}
SIDE_BY_SIDE = {"benchmark-pair": "Succeeded", "gate-vs-baseline": "Succeeded", "finish-vs-baseline": "Succeeded",
                "benchmark-candidate": "Skipped", "gate-on-slos": "Omitted", "finish-first-deploy": "Omitted"}


@pytest.fixture
def workflow():
    return yaml.safe_load((COMPILED_DIR / "train_to_serve.argo.yaml").read_text())


def arguments(seed: int, **changes) -> dict:
    return {"platform": "local", "seed": str(seed), "qps": "100", "duration-s": "3", "policy": json.dumps(POLICY),
            **changes}


def branch(run) -> dict:
    return {name: run.phases[name] for name in FIRST_DEPLOY}


def test_both_branches_and_the_exit_handler_through_hera_s_runner(workflow, isolated_state, tmp_path):
    env = {"MESHSERVE_STORAGE_SECRET_DIR": str(tmp_path / "no-secret")}
    platform = LocalPlatform()
    try:
        first = run_dag(workflow, arguments(seed=1), tmp_path / "run-1", env)
        assert [first.phases[t] for t in ("train", "upload", "deploy")] == ["Succeeded"] * 3, first.logs
        assert branch(first) == FIRST_DEPLOY, first.logs
        assert first.phases["roll-back-on-failure"] == "Skipped"  # the run succeeded
        decided = first.parameters["gate-on-slos"]["action"]
        assert decided == "promote", first.logs["gate-on-slos"]
        assert [v["track"] for v in platform.status()["models"]["digits"]] == ["primary"]

        second = run_dag(workflow, arguments(seed=2), tmp_path / "run-2", env)
        assert branch(second) == SIDE_BY_SIDE, second.logs
        action = second.parameters["gate-vs-baseline"]["action"]
        assert action in ("promote", "rollback")
        assert ("promoted" if action == "promote" else "rolled back") in second.logs["finish-vs-baseline"]
        assert json.loads(second.parameters["deploy"]["baseline-headers"]) == ["x-meshserve-track: primary"]

        failed = run_dag(workflow, arguments(seed=3, qps="-5"), tmp_path / "run-3", env)
        assert failed.phases["deploy"] == "Succeeded" and failed.phases["benchmark-pair"] == "Failed"
        assert failed.phases["gate-vs-baseline"] == "Omitted" and failed.phases["finish-vs-baseline"] == "Omitted"
        assert failed.phases["roll-back-on-failure"] == "Succeeded"
        assert "rolled back the unfinished candidate" in failed.logs["roll-back-on-failure"]
        assert [v["track"] for v in platform.status()["models"]["digits"]] == ["primary"]
    finally:
        platform.down()
