"""Output paths checked before any work starts: a command that cannot write its result says so first."""

from __future__ import annotations

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
            raise InvalidInputError(field, f"{output} is also an input of this command; it would be overwritten",
                                    "write the verdict to another file")
