"""The local platform: deploy, promote and roll back model versions as local processes behind nginx.

The same operations a cluster platform offers, with the same guarantees:
- deploy starts the new version beside the current primary as the canary; only once it answers
  ready are routes changed; if it fails to load, the previous primary keeps serving, routes unchanged;
- promote routes everything to the canary, waits for the router to drain the old routes, then stops
  the old primary; rollback routes everything back to the primary and stops the canary;
- a runtime that dies stays in the routes as a failing backend: the router retries on the other
  version, and status reports it down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.errors import InvalidInputError
from components.platform.state import PlatformState, state_dir
from components.routing.router import router_for
from components.routing.spec import Endpoint, Route, RoutingSpec
from components.serving.runtime import RunningVersion, runtime_for
from components.storage.fetch import materialize
from components.storage.published import read_published_manifest


@dataclass(frozen=True)
class VersionStatus:
    """One version's place in the routes and health."""

    track: str
    version: str
    weight: int
    ready: bool
    pid: int
    http: str
    grpc: str
    storage_uri: str


class LocalPlatform:
    """Model versions as KServe model-server processes, routed by a local nginx."""

    def __init__(self, root: Path | None = None, router: str = "nginx", runtime: str = "kserve"):
        self.root = Path(root) if root else state_dir()
        self.state = PlatformState(self.root)
        self.router = router_for(router, self.root)
        self.runtime = runtime_for(runtime, self.root)

    def deploy(self, name: str, storage_uri: str, canary_percent: int = 0) -> RunningVersion:
        """Start the version as the canary with `canary_percent` of traffic (all of it on a first deploy)."""
        Route(name, Endpoint("-", "-", "-"), canary_weight=canary_percent).validated()
        manifest = read_published_manifest(storage_uri)
        with self.state.locked() as models:
            tracks = models.get(name, {"primary": None, "canary": None})
            if tracks["canary"] is not None:
                raise InvalidInputError("name", f"{name} already has a canary ({tracks['canary'].version})",
                                        f"promote or roll back {name} first")
            primary = tracks["primary"]
            if primary is not None and primary.model_digest == manifest.model_digest:
                raise InvalidInputError("storage_uri", f"{name} already serves this model ({primary.version})",
                                        "deploy a different model version")
            model_dir = materialize(storage_uri, self.root / "models")
            canary = self.runtime.start(name, manifest.version_id, model_dir, manifest.model_digest, storage_uri)
            try:
                self.router.reconcile(Route(name, _endpoint(primary), _endpoint(canary),
                                            canary_percent if primary else 100))
            except Exception:
                self.runtime.stop(canary)  # routes unchanged: nginx refused or did not start
                raise
            models[name] = {"primary": primary, "canary": canary}
            return canary

    def promote(self, name: str) -> RunningVersion:
        """Make the canary the primary with all traffic; stop the old primary once drained."""
        with self.state.locked() as models:
            tracks = self._tracks(models, name)
            canary, old = tracks["canary"], tracks["primary"]
            if canary is None:
                raise InvalidInputError("name", f"{name} has no canary to promote", "deploy a new version first")
            self.router.reconcile(Route(name, _endpoint(canary)))  # returns after the old routes drained
            if old is not None:
                self.runtime.stop(old)
            models[name] = {"primary": canary, "canary": None}
            return canary

    def rollback(self, name: str) -> RunningVersion | None:
        """Send all traffic back to the primary and stop the canary (with no primary, remove the model)."""
        with self.state.locked() as models:
            tracks = self._tracks(models, name)
            canary, primary = tracks["canary"], tracks["primary"]
            if canary is None:
                raise InvalidInputError("name", f"{name} has no canary to roll back", "nothing to do")
            if primary is None:
                self.router.finalize(name)
                models.pop(name)
            else:
                self.router.reconcile(Route(name, _endpoint(primary)))
                models[name] = {"primary": primary, "canary": None}
            self.runtime.stop(canary)
            return primary

    def status(self) -> dict:
        """Router URLs and, per model, each version's weight, health and listeners."""
        models = self.state.read()
        ports = self.router.ports() if models else {}
        report = {"router": {"http": f"http://127.0.0.1:{ports['http']}" if ports else None,
                             "grpc": f"127.0.0.1:{ports['grpc']}" if ports else None,
                             "l4_grpc": f"127.0.0.1:{ports['l4']}" if ports and self.router.stream_enabled() else None,
                             "pid": self.router.pid()},
                  "models": {}}
        for name, tracks in models.items():
            weights = dict(zip(("primary", "canary"), self.router.get_routes(name), strict=True))
            report["models"][name] = [
                VersionStatus(track, v.version, weights[track], self.runtime.ready(v), v.pid,
                              f"127.0.0.1:{v.http_port}", f"127.0.0.1:{v.grpc_port}", v.storage_uri).__dict__
                for track, v in tracks.items() if v is not None]
        return report

    def routing_spec(self) -> RoutingSpec:
        """The routes in force: the spec the router renders (and a cluster's mesh objects render from)."""
        return self.router.spec()

    def down(self) -> list[str]:
        """Stop every process this state directory started (by recorded PID), and the router."""
        stopped = []
        with self.state.locked() as models:
            for name, tracks in list(models.items()):
                for version in tracks.values():
                    if version is not None:
                        self.runtime.stop(version)
                        stopped.append(f"{name} {version.version} (pid {version.pid})")
                models.pop(name)
            pid = self.router.pid()
            self.router.stop()
            if pid:
                stopped.append(f"router (pid {pid})")
        return stopped

    @staticmethod
    def _tracks(models: dict, name: str) -> dict:
        if name not in models:
            raise InvalidInputError("name", f"no model named {name!r} is deployed",
                                    f"deployed: {', '.join(models) or 'none'}")
        return models[name]


def _endpoint(version: RunningVersion | None) -> Endpoint | None:
    if version is None:
        return None
    return Endpoint(version.version, f"127.0.0.1:{version.http_port}", f"127.0.0.1:{version.grpc_port}")
