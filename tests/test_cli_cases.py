"""Issue 13's classes re-run: 200 bad inputs, faults and secrets across every command, each must be good.

The table of verdicts by command: `.venv/bin/python -m tests.support.cli_cases`.
"""

import pytest

from tests.support.cli_cases import CASES, run_case


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{i:03d}-{c.command}" for i, c in enumerate(CASES)])
def test_case_is_good(cli_workspace, index, tmp_path):
    outcome = run_case(CASES[index], cli_workspace, tmp_path / "case")
    assert outcome.verdict == "good", (
        f"{outcome.verdict}: exit {outcome.code} (documented {outcome.case.exit}); stderr: {outcome.err[-600:]!r}; "
        f"leftovers {outcome.leftovers}; secret in {outcome.secret_in}")
