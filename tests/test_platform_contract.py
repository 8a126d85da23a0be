"""The platform contract: the same rollout scenarios on both platforms, through the Platform protocol only
(deploy a DeployRequest, promote and roll back a ModelRef), with what serves checked after every step.

Locally the versions are real model-server processes behind nginx; on Kubernetes the real API server holds
the objects and the test plays the controllers (tests/support/kube_server.py). Only the harness differs: how a
version is published, made unready or made to fail, and how the live tracks are read.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from components.deployment.spec import spec_from_mapping
from components.errors import InvalidInputError, PlatformError
from components.platform.protocol import Deployed, DeployRequest, ModelRef, ModelStatus, Platform
from components.rollout.rules import LeaseHeldError, NotOwnedError


@dataclass
class Harness:
    """One platform under the contract: the platform, the published versions' requests, and the faults."""

    platform: Platform
    model: ModelRef
    request: Callable[[int, int], DeployRequest]  # (version index 0 or 1, canary percent)
    broken: Callable[[], DeployRequest]  # a version that fails while it loads
    make_unready: Callable[[str], None]  # the version (by name) stops being ready
    edit_weights: Callable[[int], None]  # someone sets the canary's weight by hand in the live routes
    edit_conflicts: str  # after a hand edit, what the next step says ("": it rewrites the routes)
    names: list[str] = field(default_factory=list)  # the two versions' names

    def status(self) -> ModelStatus | None:
        """The model as the platform reports what is live, through the protocol."""
        return self.platform.status(self.model.namespace).model(self.model.name)

    def tracks(self) -> dict[str, str]:
        """Track -> version, as the platform reports what is live."""
        model = self.status()
        return model.tracks() if model else {}

    def weights(self) -> dict[str, int]:
        """Track -> live weight."""
        model = self.status()
        return {version.track: version.weight for version in model.versions} if model else {}


@pytest.fixture(scope="module")
def local_published(tmp_path_factory):
    """A local state directory with two published digits versions and one that fails to load."""
    from components.manifest import ModelManifest, digest_directory, read_manifest, write_manifest
    from components.storage import upload_model
    from tests.support.local_state import two_published_versions

    root = tmp_path_factory.mktemp("contract")
    with two_published_versions(root) as uris:
        broken = root / "broken"
        broken.mkdir()
        (broken / "model.joblib").write_bytes(b"this is not a pickle")
        manifest = read_manifest(root / "m0")
        write_manifest(broken, ModelManifest(**{**manifest.__dict__, "files": digest_directory(broken)}))
        yield root, uris, upload_model(broken, "pvc://models/digits").storage_uri


@contextmanager
def local_harness(root, uris: list[str], broken_uri: str) -> Iterator[Harness]:
    from components.platform.local import LocalPlatform
    from components.platform.state import processes_of

    platform = LocalPlatform(root)

    def request(index: int, canary: int) -> DeployRequest:
        return DeployRequest(_spec("default", uris[index], canary))

    def make_unready(version: str) -> None:
        record = dict(platform.state.records())["digits"]
        served = next(v for v in (record.primary, record.canary) if v and v.version == version)
        for process in processes_of(served):
            os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.2)

    def edit_weights(canary: int) -> None:  # an operator edits nginx.conf's server weights and reloads nginx
        config = root / "router" / "nginx.conf"
        record = dict(platform.state.records())["digits"]
        text = config.read_text()
        for version, weight in ((record.primary, 100 - canary), (record.canary, canary)):
            text = re.sub(rf"server {re.escape(version.endpoint.http)} [^;]*?max_fails",
                          f"server {version.endpoint.http} weight={weight} max_fails", text)
        config.write_text(text)
        os.kill(platform.router.pid(), signal.SIGHUP)

    try:
        yield Harness(platform, ModelRef("digits"), request, lambda: DeployRequest(_spec("default", broken_uri, 10)),
                      make_unready, edit_weights, "", [uri.rsplit("/", 1)[1] for uri in uris])
    finally:
        platform.down()


@contextmanager
def kubernetes_harness(server, namespace: str) -> Iterator[Harness]:
    from components.platform.kubernetes.platform import KubernetesPlatform
    from tests.support.kube_server import FakeController

    failing: set[str] = set()
    fake = FakeController(server, namespace, lambda obj: ("failed", "model.joblib: invalid load key")
                          if obj["metadata"]["name"] in failing else "ready")
    fake.start()
    platform = KubernetesPlatform(server.admin(), ready_timeout_s=20.0)

    def request(index: int, canary: int) -> DeployRequest:
        return DeployRequest(_spec(namespace, f"pvc://models/digits/v{index + 1}", canary, f"v{index + 1}"))

    def broken() -> DeployRequest:
        failing.add("digits-vbroken")
        return DeployRequest(_spec(namespace, "pvc://models/digits/vbroken", 10, "vbroken"))

    def make_unready(version: str) -> None:
        fake.stop()  # the controller no longer marks it ready
        resource = server.admin().resource("serving.kserve.io/v1beta1", "InferenceService")
        resource.status.patch(body={"status": {"conditions": [{"type": "Ready", "status": "False",
                                                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
                              name=f"digits-{version}", namespace=namespace,
                              content_type="application/merge-patch+json")


    def edit_weights(canary: int) -> None:  # `kubectl edit` of the VirtualService: an update by another manager
        resource = server.admin().resource("networking.istio.io/v1", "VirtualService")
        service = resource.get(name="digits", namespace=namespace).to_dict()
        for rule in service["spec"]["http"]:
            for destination in rule["route"] if len(rule["route"]) == 2 else []:
                destination["weight"] = canary if destination["destination"]["host"].startswith("digits-v2") \
                    else 100 - canary
        resource.replace(body=service, namespace=namespace, field_manager="kubectl-edit")

    try:
        yield Harness(platform, ModelRef("digits", namespace), request, broken, make_unready, edit_weights,
                      "conflict: VirtualService digits: .spec.http owned by field manager kubectl-edit", ["v1", "v2"])
    finally:
        fake.stop()


def _spec(namespace: str, storage_uri: str, canary: int, version: str = ""):
    return spec_from_mapping({"name": "digits", "namespace": namespace, "storage_uri": storage_uri,
                              "version": version, "model_format": "sklearn", "runtime": "kserve-raw",
                              "router": "istio", "canary_percent": canary})


@pytest.fixture(params=["local", "kubernetes"])
def harness(request) -> Iterator[Harness]:
    """Each platform in turn (local needs nginx; kubernetes needs ../shared's API server)."""
    if request.param == "local":
        if shutil.which("nginx") is None:
            pytest.skip("needs nginx: `make test` installs it")
        root, uris, broken = request.getfixturevalue("local_published")
        request.getfixturevalue("monkeypatch").setenv("MESHSERVE_STATE_DIR", str(root))  # its pvc:// root
        with local_harness(root, uris, broken) as ready:
            yield ready
        return
    server = request.getfixturevalue("kube_server")
    with kubernetes_harness(server, request.getfixturevalue("kube_namespace")) as ready:
        yield ready


def _serve_first(h: Harness) -> Deployed:
    deployed = h.platform.deploy(h.request(0, 0))
    h.platform.promote(h.model)
    return deployed


def test_a_first_deploy_has_no_baseline_and_serves_once_promoted(harness):
    h = harness
    deployed = h.platform.deploy(h.request(0, 0))
    assert deployed.version.version == h.names[0] and deployed.baseline_storage_uri == ""
    assert h.tracks() == {"canary": h.names[0]}
    assert h.platform.promote(h.model).version == h.names[0]
    assert h.tracks() == {"primary": h.names[0]}


def test_a_canary_is_deployed_beside_the_primary_with_the_primarys_storage(harness):
    h = harness
    first = _serve_first(h)
    deployed = h.platform.deploy(h.request(1, 20))
    assert deployed.version.version == h.names[1]
    assert deployed.baseline_storage_uri == first.version.storage_uri
    assert deployed.candidate.url and deployed.baseline.url
    assert h.tracks() == {"primary": h.names[0], "canary": h.names[1]}


def test_promote_makes_the_canary_the_only_version(harness):
    h = harness
    _serve_first(h)
    h.platform.deploy(h.request(1, 20))
    assert h.platform.promote(h.model).version == h.names[1]
    assert h.tracks() == {"primary": h.names[1]}


def test_status_reads_the_live_weights_and_shows_a_hand_edit_as_drift(harness):
    h = harness
    _serve_first(h)
    h.platform.deploy(h.request(1, 20))
    assert h.weights() == {"primary": 80, "canary": 20} and h.status().drift == ""
    assert all(version.ready for version in h.status().versions)
    h.edit_weights(50)
    status = h.status()
    assert h.weights() == {"primary": 50, "canary": 50}
    assert status.drift.endswith(f" {h.names[0]} 50%, {h.names[1]} 50%; the record gives {h.names[0]} 80%, "
                                 f"{h.names[1]} 20%"), status.drift
    if h.edit_conflicts:  # a cluster: meshserve never forces another manager's fields, and changes nothing
        with pytest.raises(PlatformError, match=h.edit_conflicts):
            h.platform.rollback(h.model)
        assert h.tracks() == {"primary": h.names[0], "canary": h.names[1]} and h.status().drift
    else:  # local: the router is meshserve's own, and the next step writes its routes
        h.platform.rollback(h.model)
        assert h.weights() == {"primary": 100} and h.status().drift == ""


def test_rollback_keeps_the_primary_and_removes_the_canary(harness):
    h = harness
    _serve_first(h)
    h.platform.deploy(h.request(1, 20))
    kept = h.platform.rollback(h.model)
    assert kept is not None and kept.version == h.names[0]
    assert h.tracks() == {"primary": h.names[0]}


def test_promoting_a_canary_that_is_not_ready_is_refused_and_changes_nothing(harness):
    h = harness
    _serve_first(h)
    h.platform.deploy(h.request(1, 20))
    h.make_unready(h.names[1])
    with pytest.raises(PlatformError, match=f"cannot promote digits {h.names[1]}: it is not ready"):
        h.platform.promote(h.model)
    assert h.tracks() == {"primary": h.names[0], "canary": h.names[1]}


def test_a_version_that_fails_while_deploying_leaves_the_primary_serving(harness):
    h = harness
    _serve_first(h)
    with pytest.raises(PlatformError):
        h.platform.deploy(h.broken())
    assert h.tracks() == {"primary": h.names[0]}


# Rollout ownership: the run that deployed a canary holds the rollout until it promotes or rolls back.

def _owned(h: Harness, index: int, canary: int, owner: str) -> DeployRequest:
    return dataclasses.replace(h.request(index, canary), owner=owner)


def test_a_second_run_is_refused_naming_the_run_that_holds_the_rollout(harness):
    h = harness
    _serve_first(h)
    h.platform.deploy(_owned(h, 1, 20, "run-a"))
    with pytest.raises(InvalidInputError, match=rf"already has a canary \({h.names[1]}, owned by run-a for \d+ s"):
        h.platform.deploy(_owned(h, 1, 20, "run-b"))
    with pytest.raises(NotOwnedError, match="deployed by run-a, not by run-b"):  # run B's exit handler
        h.platform.rollback(h.model, owner="run-b")
    assert h.status().rollout.startswith("owned by run-a") and h.tracks() == {"primary": h.names[0],
                                                                               "canary": h.names[1]}
    assert h.platform.promote(h.model, owner="run-a").version == h.names[1]
    assert h.status().rollout == ""


def test_a_person_takes_over_a_live_runs_rollout_only_by_saying_so(harness):
    h = harness
    _serve_first(h)
    h.platform.deploy(_owned(h, 1, 20, "run-a"))
    with pytest.raises(LeaseHeldError, match="^name: digits's rollout is owned by run-a .* with --take-over"):
        h.platform.rollback(h.model)
    assert h.tracks() == {"primary": h.names[0], "canary": h.names[1]}
    kept = h.platform.rollback(h.model, take_over=True)
    assert kept is not None and kept.version == h.names[0] and h.tracks() == {"primary": h.names[0]}


def test_a_held_canary_waits_for_a_person_and_refuses_other_runs(harness):
    h = harness
    _serve_first(h)
    h.platform.deploy(_owned(h, 1, 20, "run-a"))
    h.platform.hold(h.model, "run-a")  # run A's analysis was inconclusive and its policy says hold
    assert h.status().rollout == "held by run-a for a person's promote or rollback"
    with pytest.raises(InvalidInputError, match="held by run-a"):
        h.platform.deploy(_owned(h, 1, 20, "run-b"))
    assert h.platform.promote(h.model).version == h.names[1]  # the person it waited for: no flag needed


def test_a_dead_runs_rollout_is_taken_over_once_its_lease_expires(harness, monkeypatch):
    h = harness
    _serve_first(h)
    monkeypatch.setenv("MESHSERVE_ROLLOUT_LEASE_S", "1")
    h.platform.deploy(_owned(h, 1, 20, "run-a"))  # run A dies here: nothing renews its lease
    time.sleep(1.5)
    assert "run-a's lease expired" in h.status().rollout
    monkeypatch.delenv("MESHSERVE_ROLLOUT_LEASE_S")
    h.platform.deploy(_owned(h, 1, 30, "run-b"))  # takes over: run A's canary is rolled back first
    status = h.status()
    assert {v.track: (v.version, v.owner) for v in status.versions} == {
        "primary": (h.names[0], ""), "canary": (h.names[1], "run-b")}
    assert h.weights() == {"primary": 70, "canary": 30} and status.rollout.startswith("owned by run-b")
    with pytest.raises(NotOwnedError):  # run A, were it only slow, has lost its rollout
        h.platform.renew(h.model, "run-a")
