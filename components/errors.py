"""Errors a user can act on, each naming the field at fault and the fix.

Every command-line entry point turns a `MeshserveError` into one line on stderr and a non-zero exit;
anything else is a bug: one line naming the log file that keeps its traceback (pipelines/cli.py).
"""


PROBLEM_LIMIT = 500  # a message never carries a whole document


class MeshserveError(Exception):
    """A problem with the user's input or environment, stated as field, problem and fix."""

    exit_code = 2

    def __init__(self, field: str, problem: str, fix: str):
        self.field = field
        self.problem = problem if len(problem) <= PROBLEM_LIMIT else problem[: PROBLEM_LIMIT - 1] + "…"
        self.fix = fix
        super().__init__(f"{field}: {problem}; {fix}")


class InvalidInputError(MeshserveError):
    """An argument or input file is missing, malformed or out of range."""


class IntegrityError(MeshserveError):
    """A file or object does not match the sha256 its manifest records."""


class StorageError(MeshserveError):
    """The storage target refused or failed an operation (credentials, bucket, permissions)."""


class PlatformError(MeshserveError):
    """The serving platform (local processes, router, cluster) refused or failed an operation."""
