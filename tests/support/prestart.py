"""Slow session servers started in the background as soon as collection shows that a test needs them, so that
their start (the API server with its CRDs: ~20-30 s; the single-node cluster: ~20 s) overlaps the tests that run
before their first user instead of adding to the suite's time."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Prestart:
    """Background starts by name; a fixture takes its server (waiting for the start, or raising what it raised),
    and what no fixture took is stopped when the session ends."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prestart")
        self.started: dict[str, tuple[Future, Callable[[Any], None]]] = {}
        self.taken: set[str] = set()

    def start(self, name: str, start: Callable[[], Any], stop: Callable[[Any], None]) -> None:
        """Begin starting `name` in the background (`stop` ends it if no fixture takes it)."""
        self.started[name] = (self.pool.submit(start), stop)

    def take(self, name: str, start: Callable[[], Any]) -> Any:
        """The server `name`: from its background start, or started now when none was begun."""
        self.taken.add(name)
        begun = self.started.get(name)
        return begun[0].result() if begun else start()

    def stop_untaken(self) -> None:
        """Stop what was started for a test that never ran (deselected at run time, or the session stopped)."""
        for name, (future, stop) in self.started.items():
            if name not in self.taken and future.exception() is None:
                stop(future.result())
        self.pool.shutdown(wait=True)
