"""A live progress line on a terminal (rich); silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable


def terminal_progress(total_seconds: float) -> tuple[Callable[[float, int, int], None] | None, Callable[[], None]]:
    """A progress callback for the runner and a function that ends the line; (None, no-op) off a terminal."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.live import Live

    live = Live(console=Console(stderr=True), refresh_per_second=4, transient=True)
    live.start()

    def update(elapsed: float, completed: int, errors: int) -> None:
        rate = completed / elapsed if elapsed > 0 else 0.0
        live.update(f"{elapsed:5.1f}/{total_seconds:.0f} s  {completed} done  {rate:8.1f} qps  {errors} errors")

    return update, live.stop
