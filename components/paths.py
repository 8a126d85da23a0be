"""Output paths checked before any work starts: a command that cannot write its result says so first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from components.errors import InvalidInputError


def writable_file(field: str, path: Path | str) -> Path:
    """A file path whose directory exists (created if missing) and takes new files; not a directory."""
    path = Path(path)
    if not str(path).strip() or path.is_dir():
        raise InvalidInputError(field, f"{str(path)!r} is a directory or empty", "pass a file path")
    _writable_parent(field, path)
    return path


def writable_directory(field: str, path: Path | str) -> Path:
    """A directory path that exists as a directory or can be created where it is named."""
    path = Path(path)
    if not str(path).strip():
        raise InvalidInputError(field, "no directory given", "pass a directory path")
    if path.exists() and not path.is_dir():
        raise InvalidInputError(field, f"{path} exists and is not a directory", "pass a directory path")
    _writable_parent(field, path)
    return path


def replaceable_directory(field: str, path: Path | str, ours: Callable[[Path], bool], kind: str) -> Path:
    """A writable directory that is missing, empty, or holds what `ours` recognises as this program's earlier
    output (`kind`, e.g. "a model"): anything else is the user's, and replacing it would delete it."""
    path = writable_directory(field, path)
    if path.is_dir() and any(path.iterdir()) and not ours(path):
        raise InvalidInputError(field, f"{path} holds files that are not {kind}; replacing it would delete them",
                                "pass a new or empty directory")
    return path


def staging_beside(target: Path) -> Path:
    """A new, empty directory next to `target`, named after it, that nothing else uses: built there, then
    renamed into place, so an existing path is never reclaimed as staging. Made like any directory (the umask
    decides its mode), so a model server running as another user can read what is renamed into place."""
    import secrets

    staging = target.parent / f".{target.name}.partial-{secrets.token_hex(8)}"
    staging.mkdir()  # exclusive: an existing path is an error, never reused
    return staging


def _writable_parent(field: str, path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{path.name}.meshserve-probe"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InvalidInputError(field, f"cannot write in {parent} ({exc.strerror or type(exc).__name__})",
                                "pass a path in a writable directory") from None


def refuse_overwriting_inputs(field: str, output: Path, inputs: list[Path]) -> None:
    """An output that is one of the command's inputs (the evidence itself) is refused before anything runs."""
    for given in inputs:
        if output.resolve() == given.resolve() or output.exists() and given.exists() and output.samefile(given):
            raise InvalidInputError(field, f"{output} is also another file of this command; it would be "
                                    "overwritten", "write this output to a file of its own")


def checked_outputs(outputs: dict[str, str | None], inputs: list[str | None]) -> None:
    """Every output given (field -> path; None: not asked for) is writable, none is one of the command's inputs
    (a payload, a policy, the evidence), and no two outputs are one file: checked before any work starts."""
    given_inputs = [Path(value) for value in inputs if value]
    earlier: list[Path] = []
    for field, value in outputs.items():
        if value is None:
            continue
        path = writable_file(field, value)
        refuse_overwriting_inputs(field, path, given_inputs + earlier)
        earlier.append(path)
