"""Files and documents from outside, read within limits.

- A file is read only if it is a regular file no larger than its limit (a FIFO, /dev/zero or a 190 MB
  spec is refused before a byte is read into memory).
- JSON is strict: a duplicate key, NaN or Infinity, or a number too large for a float is refused (Python's
  json module otherwise keeps the last duplicate and reads NaN and 1e999 as numbers).
- YAML is safe-loaded with its aliases refused, so an alias bomb of a few hundred bytes cannot expand into
  gigabytes; its numbers are then held to the same finiteness.
- A value quoted in a message is clipped, so a message never holds an expanded document.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from components.errors import InvalidInputError

DOCUMENT_LIMIT = 4 << 20  # specs, policies, kubeconfigs
REQUEST_TIMEOUT_ENV = "MESHSERVE_REQUEST_TIMEOUT_S"  # as kubectl's --request-timeout: seconds for one answer
MESSAGE_CLIP = 80


def clipped(value: object, limit: int = MESSAGE_CLIP) -> str:
    """repr(value), cut to `limit` characters (with an ellipsis)."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seconds_from_env(name: str) -> float | None:
    """A positive, finite number of seconds from the environment variable (None when unset); anything else is an
    InvalidInputError naming the variable."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 3600):
        raise InvalidInputError(name, f"{clipped(text)} is not a number of seconds", "set 0.1 to 3600, or unset it")
    return value


def read_bounded(path: Path, field: str, limit: int = DOCUMENT_LIMIT) -> str:
    """The text of a regular file of at most `limit` bytes; anything else is an InvalidInputError on `field`."""
    data = read_bounded_bytes(path, field, limit)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InvalidInputError(field, f"{clipped(str(path))} is not UTF-8 text", "pass a YAML or JSON file") from None


def read_bounded_bytes(path: Path, field: str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, never blocking on a pipe or reading a device."""
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InvalidInputError(field, f"{clipped(str(path))} does not exist", "pass an existing file") from None
    except OSError as exc:
        raise InvalidInputError(field, f"cannot read {clipped(str(path))} ({exc.strerror})",
                                "pass a readable file") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise InvalidInputError(field, f"{clipped(str(path))} is not a regular file", "pass a file, not a "
                                    "directory, pipe or device")
        if status.st_size > limit:
            raise InvalidInputError(field, f"{clipped(str(path))} is {status.st_size} bytes, over the "
                                    f"{limit} byte limit", "pass the document itself, not a dump")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InvalidInputError(field, f"{clipped(str(path))} grew past the {limit} byte limit", "pass a file at rest")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {clipped(key)}")
        seen[key] = value
    return seen


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {clipped(text)} is out of range")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(text: str) -> Any:
    """Strict JSON (raises ValueError naming the problem: duplicate keys, NaN, Infinity, 1e999)."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_finite_float,
                      parse_constant=_refuse_constant)


def _yaml_loader():
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """SafeLoader that refuses aliases (and so alias bombs) and duplicate keys."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.constructor.ConstructorError(None, None, "aliases (*name) are not allowed",
                                                        event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(key, deep=True) for key, _ in node.value]
            duplicated = {str(key) for key in keys if keys.count(key) > 1}
            if duplicated:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {clipped(sorted(duplicated)[0])}",
                                                        node.start_mark)
            return super().construct_mapping(node, deep)

    return NoAliasLoader


def _check_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"number {value} is out of range")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item)


def load_document(path: Path, field: str, limit: int = DOCUMENT_LIMIT) -> Any:
    """A YAML or JSON file (JSON by its .json suffix, strict), read within `limit`; a syntax problem, an alias,
    a duplicate key or a non-finite number is an InvalidInputError on `field`."""
    text = read_bounded(path, field, limit)
    try:
        if Path(path).suffix == ".json":
            return parse_json(text)
        import yaml

        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
        _check_finite(data)
        return data
    except ValueError as exc:
        raise InvalidInputError(field, f"{clipped(str(path))}: {str(exc).splitlines()[0][:160]}",
                                "fix the file") from None
    except Exception as exc:  # yaml.YAMLError
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInputError(field, f"{clipped(str(path))} is not valid YAML/JSON ({str(problem)[:120]})",
                                "fix the file's syntax") from None
