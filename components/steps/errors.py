"""How a step fails: its own one-line error and exit code, not a traceback in the step's log."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from components.errors import MeshserveError


@contextmanager
def step_errors(step: str) -> Iterator[None]:
    """Turn a MeshserveError (bad input, a refusal) into `meshserve STEP: error: ...` and the error's exit code.

    The step still fails (KFP and Argo see a non-zero exit and run the exit handler); what its log shows is
    the line naming the field and the fix. Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except MeshserveError as exc:
        print(f"meshserve {step}: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
