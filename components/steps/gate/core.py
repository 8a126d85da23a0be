"""The gate step's core, called by the CLI, the KFP component and the Hera template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from components.errors import InvalidInputError
from components.gate.decision import Verdict, judge, load_results
from components.gate.policy import GatePolicy
from components.gate.report import html_report, markdown_report
from components.inputs import read_bounded
from components.manifest import ModelManifest, read_manifest, verify_directory
from components.manifest.model_manifest import MANIFEST_LIMIT, parse_manifest_text

# Exit codes of `meshserve gate` (2 stays the usage/bad-input code of every meshserve command).
EXIT_CODES = {"PROMOTE": 0, "ROLLBACK": 3, "INCONCLUSIVE": 4}


@dataclass(frozen=True)
class GateOutcome:
    """The verdict and its three renderings."""

    verdict: Verdict
    verdict_json: str
    markdown: str
    html: str


def run_gate(candidate: Path, baseline: Path | None, policy: GatePolicy, candidate_model: Path | None = None,
             baseline_model: Path | None = None) -> GateOutcome:
    """Judge the candidate against the policy (and the baseline), and render the verdict."""
    candidate_evidence, baseline_evidence, failures = load_results(candidate, baseline)
    verdict = judge(candidate_evidence, baseline_evidence, policy, read_model(candidate_model),
                    read_model(baseline_model), failures)
    return GateOutcome(verdict, json.dumps(verdict.to_dict(), indent=1) + "\n", markdown_report(verdict),
                       html_report(verdict, candidate_evidence, baseline_evidence))


def read_model(path: Path | None) -> dict | None:
    """A model manifest, from its JSON file or from the model directory holding it (None if not given)."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():  # the model itself: its files must be the ones its manifest lists, as at upload and serve
        manifest = read_manifest(path)
        verify_directory(path, manifest)
        return manifest.to_dict()
    if not path.exists():
        raise InvalidInputError("model", f"cannot read a model manifest at {path}",
                                "pass the model directory or its meshserve-model.json")
    document = parse_manifest_text(read_bounded(path, "model", MANIFEST_LIMIT))
    if document is None:  # JSON null: no model (a first deploy)
        return None
    return ModelManifest.from_dict(document).to_dict()
