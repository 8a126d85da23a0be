"""The local model mesh: model versions placed on a shared pool of runtimes, as KServe ModelMesh places models
on its runtime pods (seed 000).

The pool is a few model-server processes (components/serving/mesh_runtime.py), started with the first version
deployed on it and stopped with the last one removed. A version's copies (`--replicas`, default 1) are loaded
on the runtimes holding the fewest versions (lowest label first), as ModelMesh places a model on its
least-loaded runtimes. The pool's options, from `--runtime-option KEY=VALUE`:
- `runtimes` (default 2): how many runtimes the pool has;
- `routing` (default `service`): whom the router may send a version's requests to. `service`: every runtime,
  as a Kubernetes Service in front of ModelMesh's pods does; a runtime without the version forwards the
  request to one that holds it. `model-aware`: only the runtimes holding it, as ASM's dynamic subsets route
  by the `model` header.
A running pool keeps its options: a deploy asking for others is refused until the pool is gone.

Each version keeps, as its processes, one entry per runtime that takes its requests (role `holds` or
`forwards`), all sharing the runtime's PID, so the rollout rules, status and the router treat them as they
treat a version's own processes; stopping one releases the version there, not the runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from components.errors import InvalidInputError, PlatformError
from components.processes import (
    SERVES_ENV,
    STATE_ID_ENV,
    carries,
    processes_carrying,
    start_time,
    state_identity,
    stop_carrier,
)
from components.processes.waiting import free_port, wait_for
from components.serving.runtime import READY_TIMEOUT_S, RunningVersion, answers_ready

KIND = "modelmesh"
ROUTINGS = ("service", "model-aware")
MAX_POOL = 8


@dataclass(frozen=True)
class MeshOptions:
    """The pool's options."""

    runtimes: int = 2
    routing: str = ROUTINGS[0]

    @classmethod
    def parsed(cls, given: dict[str, str], current: MeshOptions | None) -> MeshOptions:
        """The options `--runtime-option` gives, the rest from the running pool (else the defaults)."""
        known = {field.name for field in fields(cls)}
        for key in given:
            if key not in known:
                raise InvalidInputError(f"runtime_options.{key}", "is not an option of the local model mesh",
                                        f"use {' or '.join(sorted(known))}")
        base = current or cls()
        runtimes = given.get("runtimes", str(base.runtimes))
        if not runtimes.isdigit() or not 1 <= int(runtimes) <= MAX_POOL:
            raise InvalidInputError("runtime_options.runtimes", f"{runtimes!r} is not a pool size",
                                    f"pass 1 to {MAX_POOL}")
        routing = given.get("routing", base.routing)
        if routing not in ROUTINGS:
            raise InvalidInputError("runtime_options.routing", f"unknown routing {routing!r}",
                                    f"use one of {', '.join(ROUTINGS)}")
        return cls(int(runtimes), routing)


@dataclass(frozen=True)
class PoolRuntime:
    """One runtime of the pool: its process and its own (control) port."""

    label: str
    pid: int
    started: int
    http_port: int
    grpc_port: int
    log: str

    @property
    def address(self) -> str:
        """Its own port's address."""
        return f"127.0.0.1:{self.http_port}"


@dataclass(frozen=True)
class Placement:
    """What one runtime of the pool does: the versions it holds and those it forwards."""

    runtime: PoolRuntime
    holds: tuple[str, ...]
    forwards: tuple[str, ...]


class LocalModelMesh:
    """The ServingRuntime of the local model mesh; its pool lives in <state>/mesh/pool.json."""

    protocols: tuple[str, ...] = ("v2-rest",)  # a version's listeners are REST; gRPC reaches a runtime's own models

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir)
        self.dir = self.root / "mesh"
        self.file = self.dir / "pool.json"
        self.given: dict[str, str] = {}

    @property
    def identity(self) -> str:
        """The state directory's identity, carried by every runtime of the pool."""
        self.root.mkdir(parents=True, exist_ok=True)
        return state_identity(self.root)

    def configure(self, options: dict[str, str]) -> None:
        """Keep the options for the next start (checked now against the running pool's)."""
        current = self.pool()
        self.given = dict(options)
        self._options(current)

    def pool(self) -> tuple[MeshOptions, tuple[PoolRuntime, ...]] | None:
        """The pool's options and its live runtimes (None when there is no pool)."""
        if not self.file.is_file():
            return None
        data = json.loads(self.file.read_text())
        runtimes = tuple(PoolRuntime(**item) for item in data["runtimes"])
        live = tuple(runtime for runtime in runtimes if carries(runtime.pid, self.identity, runtime.started))
        return MeshOptions(**data["options"]), live

    def placement(self) -> tuple[MeshOptions, tuple[Placement, ...]] | None:
        """What each runtime of the pool holds and forwards, as it answers (None when there is no pool)."""
        pool = self.pool()
        if pool is None:
            return None
        options, runtimes = pool
        placements = []
        for runtime in runtimes:
            listeners = self._listeners(runtime)
            placements.append(Placement(runtime, *(tuple(f"{item['name']} {item['version']}" for item in listeners
                                                          if bool(item["holders"]) == forwarding)
                                                    for forwarding in (False, True))))
        return options, tuple(placements)

    def start(self, name: str, version: str, model_dir: Path, model_digest: str, storage_uri: str,
              replicas: int = 1, first_replica: int = 0) -> list[RunningVersion]:
        """Load the version on the `replicas` least-loaded runtimes (starting the pool first if there is none) and,
        with `service` routing, give every other runtime a listener forwarding to them; return one entry per
        runtime taking its requests, holders first, once each answers ready. On failure nothing is left."""
        if first_replica:
            raise InvalidInputError("replicas", "a model mesh's runtimes are shared by its models, so one version "
                                    "does not scale on its own", "deploy the version again with --replicas N")
        options, runtimes = self._running_pool()
        if replicas > len(runtimes):
            raise InvalidInputError("replicas", f"{replicas} copies do not fit a pool of {len(runtimes)} runtimes",
                                    f"pass at most {len(runtimes)}, or --runtime-option runtimes={replicas}")
        loads = {runtime.label: len(self._listeners(runtime, holding=True)) for runtime in runtimes}
        holders = sorted(runtimes, key=lambda runtime: (loads[runtime.label], runtime.label))[:replicas]
        started: list[RunningVersion] = []
        try:
            for runtime in holders:
                started.append(self._place(runtime, "hold", name, version, model_digest, storage_uri,
                                           {"model_dir": str(model_dir)}))
            held_at = [f"127.0.0.1:{entry.http_port}" for entry in started]
            if options.routing == "service":
                for runtime in (runtime for runtime in runtimes if runtime not in holders):
                    started.append(self._place(runtime, "forward", name, version, model_digest, storage_uri,
                                               {"holders": held_at}))
            return started
        except BaseException:  # leave no listener behind (nor a pool that serves nothing)
            for entry in started:
                self.stop(entry)
            if not started:
                self._stop_pool_if_idle()
            raise

    def ready(self, running: RunningVersion) -> bool:
        """The version's listener there answers GET /v2/models/NAME/ready with 200 (a forwarder: its holder does)."""
        return answers_ready(running)

    def owns(self, running: RunningVersion) -> bool:
        """The runtime is alive and is the one the pool started."""
        return carries(running.pid, self.identity, running.started or None)

    def stop(self, running: RunningVersion) -> None:
        """Release the version on that runtime (its in-flight requests finish); the pool stops with its last
        version."""
        runtime = self._runtime_of(running)
        if runtime is not None and self.owns(running):
            try:
                self._call(runtime, "release", {"port": running.http_port})
            except PlatformError:
                pass  # a runtime that cannot answer is stopped with the pool
        self._stop_pool_if_idle()

    def stop_pid(self, pid: int, started: int | None = None) -> None:
        """Stop one process of this state directory's."""
        stop_carrier(pid, self.identity, started)

    def unrecorded(self, recorded: set[int]) -> list[tuple[int, str]]:
        """Servers of this state directory's that no record holds, the pool's runtimes aside (the pool keeps them)."""
        pool = self.pool()
        kept = {runtime.pid for runtime in pool[1]} if pool else set()
        return [(pid, environment[SERVES_ENV]) for pid, environment in processes_carrying(self.identity)
                if SERVES_ENV in environment and pid not in recorded | kept]

    def _options(self, pool: tuple[MeshOptions, tuple[PoolRuntime, ...]] | None) -> MeshOptions:
        """The options asked for, refused when a pool that serves runs with others."""
        current = pool[0] if pool and pool[1] else None
        options = MeshOptions.parsed(self.given, current)
        if current is not None and options != current:
            changed = next(field.name for field in fields(MeshOptions)
                           if getattr(options, field.name) != getattr(current, field.name))
            raise InvalidInputError(f"runtime_options.{changed}", f"the local model mesh runs with {changed}="
                                    f"{getattr(current, changed)} while it serves models",
                                    f"pass {changed}={getattr(current, changed)}, or run `meshserve local down` first")
        return options

    def _running_pool(self) -> tuple[MeshOptions, tuple[PoolRuntime, ...]]:
        """The pool, started (or completed, when a runtime of it died) with the options asked for."""
        pool = self.pool()
        options = self._options(pool)
        runtimes = list(pool[1]) if pool else []
        labels = {runtime.label for runtime in runtimes}
        try:
            for index in range(options.runtimes):
                if f"runtime-{index}" not in labels:
                    runtimes.append(self._launch(f"runtime-{index}"))
        finally:
            self._save(options, runtimes)
        return options, tuple(sorted(runtimes, key=lambda runtime: runtime.label))

    def _launch(self, label: str) -> PoolRuntime:
        self.dir.mkdir(parents=True, exist_ok=True)
        http_port, grpc_port, log = free_port(), free_port(), self.dir / f"{label}.log"
        environment = {**os.environ, "PYTHONHASHSEED": "0", STATE_ID_ENV: self.identity,
                       SERVES_ENV: f"{KIND}/{label}"}
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "components.serving", "--mesh-runtime", label, "--http-port", str(http_port),
                 "--grpc-port", str(grpc_port)], stdout=out, stderr=out, start_new_session=True, env=environment)
        runtime = PoolRuntime(label, process.pid, start_time(process.pid) or 0, http_port, grpc_port, str(log))
        if not wait_for(lambda: process.poll() is not None or self._live(runtime), READY_TIMEOUT_S) or process.poll():
            self.stop_pid(process.pid)
            raise PlatformError("runtime", f"the model mesh's {label} did not start", f"see {log}")
        return runtime

    def _live(self, runtime: PoolRuntime) -> bool:
        try:
            with urllib.request.urlopen(f"http://{runtime.address}/v2/health/live", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def _place(self, runtime: PoolRuntime, action: str, name: str, version: str, model_digest: str,
               storage_uri: str, extra: dict) -> RunningVersion:
        """Have the runtime hold or forward the version on a new port; the entry the version keeps for it."""
        port = free_port()
        self._call(runtime, action, {"name": name, "version": version, "port": port} | extra)
        return RunningVersion(name, version, model_digest, storage_uri, runtime.pid, port, runtime.grpc_port,
                              runtime.log, runtime.started, KIND, "holds" if action == "hold" else "forwards")

    def _call(self, runtime: PoolRuntime, action: str, request: dict) -> object:
        """POST the runtime's control API; its error, as a PlatformError naming the runtime."""
        call = urllib.request.Request(f"http://{runtime.address}/meshserve/v1/{action}",
                                      data=json.dumps(request).encode(), method="POST",
                                      headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(call, timeout=READY_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            error = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise PlatformError("model", f"{runtime.label} could not {action} {request.get('name', '')} "
                                f"{request.get('version', '')}: {str(error)[-300:]}", f"see {runtime.log}") from None
        except OSError as exc:
            raise PlatformError("runtime", f"{runtime.label} did not answer: {exc}", f"see {runtime.log}") from None

    def _listeners(self, runtime: PoolRuntime, holding: bool = False) -> list[dict]:
        """The runtime's listeners as it answers (only those it serves itself, with `holding`)."""
        try:
            with urllib.request.urlopen(f"http://{runtime.address}/meshserve/v1/listeners", timeout=5) as response:
                listeners = json.loads(response.read())
        except OSError:
            return []
        return [item for item in listeners if not (holding and item["holders"])]

    def _runtime_of(self, running: RunningVersion) -> PoolRuntime | None:
        pool = self.pool()
        return next((runtime for runtime in pool[1] if runtime.pid == running.pid), None) if pool else None

    def _stop_pool_if_idle(self) -> None:
        """With no runtime serving a listener, stop every runtime and forget the pool."""
        pool = self.pool()
        if pool is None or any(self._listeners(runtime) for runtime in pool[1]):
            return
        for runtime in pool[1]:
            self.stop_pid(runtime.pid, runtime.started)
        self.file.unlink(missing_ok=True)

    def _save(self, options: MeshOptions, runtimes: list[PoolRuntime]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"options": asdict(options), "runtimes": [asdict(r) for r in runtimes]},
                                        indent=1))
        temporary.replace(self.file)

