"""The local serving runtimes by name (an unknown name is an error), and `LocalServers`, which holds them all
and hands each process to the kind that started it.

`kserve` runs KServe's model server as processes of a version's own (components/serving/runtime.py);
`modelmesh` places versions on a shared pool of runtimes (components/serving/mesh.py).
"""

from __future__ import annotations

from pathlib import Path

from components.errors import InvalidInputError
from components.serving.mesh import KIND, LocalModelMesh
from components.serving.runtime import LocalKServeRuntime, RunningVersion, ServingRuntime

LOCAL_RUNTIMES = {"kserve": "KServe's Python model server, processes of its own per version",
                  "modelmesh": "a pool of KServe model servers shared by the models, as ModelMesh's runtimes"}
DEFAULT_LOCAL_RUNTIME = "kserve"
# the cluster runtimes each local kind stands in for (KServe's model server is what they run)
STANDS_IN_FOR = {"kserve": ("kserve", "kserve-raw", "deployment"), "modelmesh": ("modelmesh",)}


def local_kind_for(cluster_runtime: str) -> str:
    """The local kind that serves a deployment spec's runtime here; a runtime with no local stand-in is refused."""
    kind = next((kind for kind, runtimes in STANDS_IN_FOR.items() if cluster_runtime in runtimes), None)
    if kind is None:
        accepted = ", ".join(runtime for runtimes in STANDS_IN_FOR.values() for runtime in runtimes)
        raise InvalidInputError("runtime", f"{cluster_runtime!r} does not run on the local platform",
                                f"use {accepted} here (the cluster runs the others)")
    return kind


def local_runtime_for(kind: str, state_dir: Path) -> ServingRuntime:
    """The local serving runtime registered under `kind` (the cluster runtimes are components/runtimes); an
    unknown kind is an error."""
    if kind == DEFAULT_LOCAL_RUNTIME:
        return LocalKServeRuntime(state_dir)
    if kind == KIND:
        return LocalModelMesh(state_dir)
    raise InvalidInputError("runtime", f"{kind!r} does not run on the local platform",
                            f"use one of {', '.join(LOCAL_RUNTIMES)} (the cluster runs the others)")


class LocalServers:
    """Every local runtime kind of a state directory; each process goes to the kind that started it."""

    def __init__(self, state_dir: Path):
        self.mesh = LocalModelMesh(state_dir)
        self.kinds: dict[str, ServingRuntime] = {kind: self.mesh if kind == KIND else local_runtime_for(kind, state_dir)
                                                 for kind in LOCAL_RUNTIMES}

    def kind(self, kind: str) -> ServingRuntime:
        """The runtime registered under `kind` (an unknown kind is an error)."""
        if kind not in self.kinds:
            local_runtime_for(kind, Path())  # raises, naming the kinds
        return self.kinds[kind]

    def of(self, running: RunningVersion) -> ServingRuntime:
        """The runtime that started the process."""
        return self.kind(running.runtime)

    def ready(self, running: RunningVersion) -> bool:
        """Whether the version answers its readiness probe there."""
        return self.of(running).ready(running)

    def owns(self, running: RunningVersion) -> bool:
        """Whether the process is alive and the one its runtime started."""
        return self.of(running).owns(running)

    def stop(self, running: RunningVersion) -> None:
        """Stop serving the version there (its process, or its place on a shared runtime)."""
        self.of(running).stop(running)

    def stop_pid(self, pid: int, started: int | None = None) -> None:
        """Stop one server of this state directory's, whichever kind started it."""
        self.kind(DEFAULT_LOCAL_RUNTIME).stop_pid(pid, started)

    def unrecorded(self, recorded: set[int]) -> list[tuple[int, str]]:
        """Every server of this state directory's that no record holds and no kind keeps (a model mesh keeps its
        pool's runtimes while the pool serves)."""
        listed = [set(kind.unrecorded(recorded)) for kind in self.kinds.values()]
        return sorted(set.intersection(*listed))

    def every_server(self) -> list[tuple[int, str]]:
        """Every server of this state directory's (each carries its identity), recorded or kept or not."""
        return self.kind(DEFAULT_LOCAL_RUNTIME).unrecorded(set())
