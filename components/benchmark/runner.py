"""The runner: owns workers and timing, in one uvloop event loop per process.

Open loop (a rate): hit i is sent at the pacer's due time whatever earlier hits are doing, and its
latency runs from that due time, so a stalled server shows in the tail instead of silently slowing
the client (coordinated omission corrected, as wrk2 does). The event loop's timers have millisecond
granularity, so the scheduler wakes up to _EARLY_S before a hit is due and sends it then; a hit sent
early is timed from its real send, a late one from its due time: min(sent, due). Closed loop (no rate): `concurrency`
workers send back to back; latency runs from each actual send. With `procs` > 1 the run is split
across processes that start together and return partial results, merged exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from components.benchmark.clients import Outcome, ProtocolClient, client_for
from components.benchmark.histogram import LatencyHistogram
from components.benchmark.pacer import pacer_for
from components.benchmark.settings import BenchSettings
from components.benchmark.targets import RequestSpec

# Open loop: at most this many seconds' worth of requests in flight before the scheduler waits.
_INFLIGHT_SECONDS = 2.0
_PROGRESS_INTERVAL_S = 0.5
_START_DELAY_S = 0.05
_EARLY_S = 0.001
clock = time.perf_counter  # loop.time() is libuv's millisecond clock: too coarse for latencies
T = TypeVar("T")


@dataclass
class PartialResult:
    """What one process measured (picklable, merged by the parent)."""

    histogram: str
    by_status: dict[str, int]
    by_error: dict[str, int]
    samples_us: list[int]
    sent: int
    measured_from: float
    last_done: float


@dataclass
class Recorder:
    """Collects measured outcomes: a histogram, counts by status and error kind, optional raw samples."""

    keep_samples: bool
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    by_status: Counter = field(default_factory=Counter)
    by_error: Counter = field(default_factory=Counter)
    samples_us: list[int] = field(default_factory=list)
    sent: int = 0
    last_done: float = 0.0

    def record(self, outcome: Outcome, latency: float, done: float) -> None:
        """Count one completed, measured request."""
        self.histogram.record(latency)
        self.by_status[outcome.status] += 1
        if outcome.error is not None:
            self.by_error[outcome.error] += 1
        if self.keep_samples:
            self.samples_us.append(round(latency * 1e6))
        self.last_done = max(self.last_done, done)

    def partial(self, measured_from_wall: float, wall_offset: float) -> PartialResult:
        """The picklable form, with perf_counter times converted to wall-clock seconds."""
        last_done = self.last_done + wall_offset if self.last_done else measured_from_wall
        return PartialResult(self.histogram.encode(), dict(self.by_status), dict(self.by_error),
                             self.samples_us, self.sent, measured_from_wall, last_done)


Progress = Callable[[float, int, int], None]  # (elapsed s, completed, errors)


async def run_in_this_process(settings: BenchSettings, spec: RequestSpec, progress: Progress | None = None,
                              start_offset: float = 0.0) -> PartialResult:
    """Run the whole load from this process's event loop, `start_offset` seconds after the common start."""
    loop = asyncio.get_running_loop()
    client = client_for(spec, settings.concurrency, settings.timeout, settings.grpc_channels)
    recorder = Recorder(settings.keep_samples)
    await client.start()
    start = clock() + _START_DELAY_S + start_offset
    wall_offset = time.time() - clock()
    ticker = loop.create_task(_report_progress(progress, recorder, start + settings.warmup)) if progress else None
    try:
        if settings.open_loop:
            await _open_loop(client, settings, recorder, start)
        else:
            await _closed_loop(client, settings, recorder, start)
    finally:
        if ticker:
            ticker.cancel()
        await client.close()
    return recorder.partial(start + settings.warmup + wall_offset, wall_offset)


def _rate(settings: BenchSettings) -> float:
    """An open loop's requested rate (the settings refuse an open loop without one)."""
    if settings.qps is None:
        raise ValueError("an open loop needs a requested rate")
    return settings.qps


async def _open_loop(client: ProtocolClient, settings: BenchSettings, recorder: Recorder, start: float) -> None:
    loop = asyncio.get_running_loop()
    qps = _rate(settings)
    pacer = pacer_for(qps, settings.ramp_to_qps, settings.bound_seconds(), settings.jitter, settings.seed)
    end = settings.warmup + (settings.duration if settings.duration is not None else math.inf)
    max_inflight = max(settings.concurrency, int(max(qps, settings.ramp_to_qps or 0) * _INFLIGHT_SECONDS))
    pending: set[asyncio.Task] = set()

    async def timed(intended: float, measured: bool) -> None:
        sent = clock()
        outcome = await client.send()
        done = clock()
        if measured:
            recorder.record(outcome, done - min(sent, intended), done)

    for hit in itertools.count():
        due = pacer.due(hit)
        if due >= end or (settings.count is not None and recorder.sent >= settings.count):
            break
        delay = start + due - clock()
        if delay > _EARLY_S:
            await asyncio.sleep(delay - _EARLY_S)
        measured = due >= settings.warmup
        recorder.sent += measured
        task = loop.create_task(timed(start + due, measured))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if len(pending) >= max_inflight:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.wait(pending)


async def _closed_loop(client: ProtocolClient, settings: BenchSettings, recorder: Recorder, start: float) -> None:
    await asyncio.sleep(max(0.0, start - clock()))
    measured_from = start + settings.warmup
    end = measured_from + settings.duration if settings.duration is not None else math.inf

    async def worker() -> None:
        while (sent_at := clock()) < end:
            measured = sent_at >= measured_from
            if measured:
                if settings.count is not None and recorder.sent >= settings.count:
                    return
                recorder.sent += 1
            outcome = await client.send()
            done = clock()
            if measured:
                recorder.record(outcome, done - sent_at, done)

    await asyncio.gather(*(worker() for _ in range(settings.concurrency)))


async def _report_progress(progress: Progress, recorder: Recorder, measured_from: float) -> None:
    while True:
        await asyncio.sleep(_PROGRESS_INTERVAL_S)
        progress(max(0.0, clock() - measured_from), recorder.histogram.count, sum(recorder.by_error.values()))


def run_partials(settings: BenchSettings, spec: RequestSpec, progress: Progress | None = None) -> list[PartialResult]:
    """Run the load in one process, or split across `settings.procs` processes, and return what each measured."""
    if settings.procs == 1:
        return [run_interruptibly(run_in_this_process(settings, spec, progress))]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(settings.procs + 1)
    queue = context.Queue()
    workers = [context.Process(target=_worker_main, args=(part, spec, barrier, queue), daemon=True)
               for part in settings.split(settings.procs)]
    # Ctrl-C reaches the terminal's whole process group: the load processes start with SIGINT ignored (an
    # ignored signal stays ignored across exec), so only this process handles it and stops them.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for worker in workers:
            worker.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        barrier.wait(timeout=120)
        deadline = settings.bound_seconds() + settings.timeout + 60
        return [queue.get(timeout=deadline) for _ in workers]
    except BaseException:  # failed or interrupted: the load stops now, not when the workers' time is up
        for worker in workers:
            worker.kill()
        raise
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()


def run_side_by_side(loads: list[tuple[BenchSettings, RequestSpec]]) -> list[PartialResult]:
    """Run several loads at the same time on one event loop, so that each sees the same machine.

    Open loops are staggered by a fraction of the first load's period (two loads at 250 qps: 2 ms
    apart), so their requests do not leave in lockstep pairs.
    """
    period = 1.0 / _rate(loads[0][0]) if loads[0][0].open_loop else 0.0

    async def all_loads() -> list[PartialResult]:
        return list(await asyncio.gather(*(run_in_this_process(settings, spec, start_offset=i * period / len(loads))
                                           for i, (settings, spec) in enumerate(loads))))

    return run_interruptibly(all_loads())


def run_interruptibly(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on a uvloop event loop; Ctrl-C or SIGTERM stops it and raises KeyboardInterrupt here.

    A Python signal handler that raises runs inside whatever callback the loop is in, and uvloop takes an
    exception from a protocol callback for a broken connection and goes on: the load would not stop.
    So while the loop runs, both signals cancel the main task instead (the previous handlers come back
    after)."""
    import uvloop

    async def guarded() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        caught: list[int] = []
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        def interrupted(sig: int) -> None:
            caught.append(sig)
            if task is not None:
                task.cancel()

        for sig, handler in previous.items():
            if handler is not signal.SIG_IGN:
                loop.add_signal_handler(sig, interrupted, sig)
        try:
            return await main
        except asyncio.CancelledError:
            if caught:
                raise KeyboardInterrupt from None
            raise
        finally:
            for sig, handler in previous.items():
                if handler is not signal.SIG_IGN:
                    loop.remove_signal_handler(sig)
                    signal.signal(sig, handler)

    if threading.current_thread() is not threading.main_thread():
        return uvloop.run(main)
    return uvloop.run(guarded())


def _worker_main(settings: BenchSettings, spec: RequestSpec, barrier, queue) -> None:
    """A load process: wait for every sibling, run, send back the partial result."""
    import uvloop

    barrier.wait(timeout=120)
    queue.put(uvloop.run(run_in_this_process(settings, spec)))
