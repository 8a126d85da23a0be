"""`meshserve run` (what `make run` runs): the train-to-serve pipeline on this machine through kfp.local.

Each task runs as a subprocess of this Python (SubprocessRunner, use_venv=False), so the steps share
the project's environment and the local platform's state directory. Every run trains with the next
seed (a different split, so a different model version), so a second run rolls a new version out
against the first.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
import warnings
from collections import deque
from pathlib import Path
from typing import TextIO

from components.benchmark.background import BackgroundLoad
from components.errors import PlatformError
from components.platform.state import STATE_DIR_ENV, state_dir


def run_local_pipeline(name: str, dataset: str, framework: str, storage_prefix: str) -> dict:
    """Run the pipeline, then print the decision, the key figures and where the reports are."""
    from kfp import local

    from pipelines.kfp_pipelines import train_to_serve_pipeline

    check_run_inputs(name, dataset, framework, storage_prefix)
    # The steps' image holds this very package; running it in this venv is the point.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task that uses custom",
                            category=RuntimeWarning)
    root = state_dir()
    os.environ[STATE_DIR_ENV] = str(root)  # kfp.local tasks inherit it and share the platform
    seed = _next_seed(root)
    pipeline_root = root / "kfp-local"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root),
               raise_on_error=True)
    # Display names are for the KFP UI; the local runner warns once per task that it ignores them.
    warnings.filterwarnings("ignore", message="Task .* have no effect in the current local runner",
                            category=UserWarning)
    started = time.perf_counter()
    log = pipeline_root / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"meshserve run: {name} ({framework} on {dataset}, seed {seed}); kfp.local's full log: {log}", flush=True)
    traffic = _background_traffic(name, dataset, root)
    with open(log, "w") as written, contextlib.redirect_stdout(TaskProgress(written, sys.stdout)) as progress:
        try:
            train_to_serve_pipeline(name=name, dataset=dataset, framework=framework, seed=seed,
                                    storage_prefix=storage_prefix)
        except RuntimeError as exc:  # kfp.local: a task failed; its last lines were shown
            raise PlatformError("run", f"the pipeline failed: {failed_task(exc)} (see {log})",
                                "fix what that step's error above names; the rollback step left serving as it was"
                                ) from None
        finally:
            progress.flush()
            sent = traffic.stop() if traffic else None
    summary = summarize(_latest_run(pipeline_root), name)
    summary["traffic"] = {"requests": sent.total, "failed": sent.failed, "qps": BACKGROUND_QPS} if sent else None
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["log"] = str(log)
    _print(summary)
    return summary


_JSON_PUNCTUATION = '{}[]"'
BACKGROUND_QPS = 50.0
BACKGROUND_S = 900.0  # an upper bound: it is stopped when the pipeline ends


def _background_traffic(name: str, dataset: str, root: Path) -> BackgroundLoad | None:
    """Production-like traffic through the router while the pipeline runs, when a version already serves (a
    progressive rollout's live guard reads it); None on a first deploy (no traffic to send yet)."""
    from components.benchmark.background import start_background_load
    from components.platform.local import LocalPlatform

    platform = LocalPlatform(root)
    status = platform.status().model(name)
    if status is None or "primary" not in status.tracks():
        return None
    url = f"http://127.0.0.1:{platform.router.ports()['http']}"
    print(f"  background traffic: {BACKGROUND_QPS:g} qps through {url} (no track header) while the pipeline runs",
          flush=True)
    return start_background_load(url, name, BACKGROUND_QPS, BACKGROUND_S, root / "traffic" / "counts.jsonl",
                                 sample=dataset)


class TaskProgress(io.TextIOBase):
    """Where kfp.local's output goes during a run: all of it to the log file, and to the terminal one line per
    task as it starts and as it ends (status and seconds); a failed task's last lines are shown too."""

    _STARTED = re.compile(r"Executing task '([^']+)'")
    _ENDED = re.compile(r"Task '([^']+)' finished with status (\w+)")
    _SHOWN_ON_FAILURE = 15

    def __init__(self, log: TextIO, terminal: TextIO):
        self.log, self.terminal = log, terminal
        self.pending = ""
        self.started: dict[str, float] = {}
        self.recent: deque[str] = deque(maxlen=self._SHOWN_ON_FAILURE)

    def writable(self) -> bool:
        """Always: it is written to like stdout."""
        return True

    def write(self, text: str) -> int:
        """Keep everything in the log; report the task lines."""
        self.log.write(text)
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            self._line(re.sub(r"\x1b\[[0-9;]*m", "", line))
        return len(text)

    def flush(self) -> None:
        """Flush the log and the terminal."""
        self.log.flush()
        self.terminal.flush()

    def _line(self, line: str) -> None:
        started, ended = self._STARTED.search(line), self._ENDED.search(line)
        if started:
            self.started[started.group(1)] = time.perf_counter()
            self.recent.clear()
            self._show(f"  {started.group(1):28} started")
        elif ended:
            task, state = ended.groups()
            seconds = time.perf_counter() - self.started.get(task, time.perf_counter())
            self._show(f"  {task:28} {state.lower():8} {seconds:6.1f} s")
            if state != "SUCCESS":
                self._show("\n".join(f"    | {kept}" for kept in self.recent))
        elif line.strip() and line.strip()[0] not in _JSON_PUNCTUATION and "Streamed logs:" not in line:
            # the task's own lines: not the executor input's JSON dump, not kfp.local's header
            self.recent.append(line.strip()[:200])

    def _show(self, text: str) -> None:
        print(text, file=self.terminal, flush=True)


def failed_task(error: RuntimeError) -> str:
    """Which task kfp.local says failed, from its message (colour codes removed)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    found = re.search(r"Inner task failed: '([^']+)'", text)
    return f"its {found.group(1)} step failed" if found else text.splitlines()[0][:200]


def check_run_inputs(name: str, dataset: str, framework: str, storage_prefix: str) -> None:
    """Refuse a bad name, dataset, framework or storage target before any step runs."""
    from components.routing.spec import Endpoint, Route
    from components.storage.uri import parse_storage_uri
    from components.training import TrainConfig

    Route(name, Endpoint("-", "-", "-")).validated()
    TrainConfig(framework=framework, dataset=dataset).validated()
    parse_storage_uri(storage_prefix)


def _next_seed(root: Path) -> int:
    counter = root / "run-count"
    seed = int(counter.read_text()) if counter.is_file() else 0
    root.mkdir(parents=True, exist_ok=True)
    counter.write_text(str(seed + 1))
    return seed


def _latest_run(pipeline_root: Path) -> Path:
    return max((p for p in pipeline_root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)


def summarize(run_dir: Path, name: str) -> dict:
    """The run's verdict and benchmark figures, read from its artifacts, and the platform's state."""
    from components.platform.local import LocalPlatform
    from components.rollout.progress import Progress
    from components.steps.progressive.core import rollout_action, step_table

    verdict_file = next(run_dir.rglob("verdict"))
    verdict = json.loads(verdict_file.read_text())
    progress = Progress.from_dict(json.loads(next(run_dir.rglob("progress")).read_text()))
    if progress is None:
        raise ValueError(f"the run under {run_dir} wrote no progress")
    reports = sorted(str(p) for p in run_dir.rglob("*report"))
    analysis = verdict.get("analysis") or {}
    return {"phase": progress.phase, "steps": step_table(progress), "decision": verdict.get("decision", "-"),
            "action": rollout_action(progress), "reason": progress.message,
            "evidence": verdict.get("evidence", {}), "model": verdict.get("candidate_model"), "reports": reports,
            "verdict": str(verdict_file), "status": LocalPlatform().status().to_dict(),
            "analysis": {"stopped": analysis.get("stopped", ""), "looks": analysis.get("looks_taken", 0),
                         "measured_s": analysis.get("measured_s_per_side", 0.0),
                         "baseline": analysis.get("context", {}).get("baseline", "")}}


def _print(summary: dict) -> None:
    print(f"\nmeshserve run: {summary['phase']} → {summary['action']} ({summary['seconds']} s)")
    print(f"  why: {summary['reason']}")
    print("  " + summary["steps"].replace("\n", "\n  "))
    if summary["traffic"]:
        traffic = summary["traffic"]
        print(f"  background traffic: {traffic['requests']} requests at {traffic['qps']:g} qps, "
              f"{traffic['failed']} failed")
    analysis = summary["analysis"]
    print(f"  analysis: {summary['decision']} after {analysis['looks']} look(s), {analysis['measured_s']:.0f} s per "
          f"side, baseline {analysis['baseline']}; {analysis['stopped']}")
    model = summary["model"] or {}
    print(f"  candidate: {model.get('name')} digest {str(model.get('model_digest'))[:12]} "
          f"accuracy {model.get('metrics', {}).get('accuracy')}")
    for role, facts in summary["evidence"].items():
        latency = facts["latency_ms"]
        print(f"  {role:9} {facts['achieved_qps']:.1f} qps, p50 {latency['p50']:.3f} ms, p90 {latency['p90']:.3f} ms, "
              f"p99 {latency['p99']:.3f} ms ({facts['samples']} requests through the router)")
    gateway = summary["status"]["gateway"]
    print(f"  serving: router {gateway.get('http')} (gRPC {gateway.get('grpc')})")
    for model in summary["status"]["models"]:
        for v in model["versions"]:
            print(f"    {model['name']} {v['track']} {v['version']} {v['weight']}% {'ready' if v['ready'] else 'DOWN'}")
    print(f"  verdict: {summary['verdict']}")
    for report in summary["reports"]:
        print(f"  report:  {report}")
    print(f"  log:     {summary['log']} (kfp.local's whole output)")
