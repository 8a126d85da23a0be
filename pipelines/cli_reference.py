"""docs/cli.md, the command-line reference, generated from the parser itself (`make golden` rewrites it;
tests/test_cli_reference.py fails when the two disagree)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

from pipelines.cli import build_parser

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
WIDTH = "100"  # argparse wraps help at the terminal's width: fix it, so the page is the same everywhere


def render_reference() -> str:
    """The page: every command's (and sub-command's) own --help, in the parser's order."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        parser = build_parser()
        sections = [f"## `{' '.join(path)}`\n\n```\n{sub.format_help().rstrip()}\n```\n"
                    for path, sub in _commands(parser, ["meshserve"])]
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    head = ("# The `meshserve` command line\n\nGenerated from the parser (`pipelines/cli_reference.py`); do not edit "
            "by hand: `make golden` rewrites it.\nExit codes: 0 success (the gate and the analysis: PROMOTE), 1 "
            "unexpected error (the traceback's log is named), 2 bad input, 3 ROLLBACK, 4 INCONCLUSIVE, 130 "
            "interrupted.\n")
    return "\n".join([head, *sections])


def _commands(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, [*path, name])


if __name__ == "__main__":
    REFERENCE.write_text(render_reference())
