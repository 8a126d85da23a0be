"""kill -9 at every step of a local deploy, promote and rollback, and of nginx's master: the next command
settles what was left (the journal's intent finished or undone, unrecorded servers stopped, the router
restarted on its ports), and `status` then tells what nginx really does (which replica answered each
request, by the `x-meshserve-upstream` header)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from components.platform.local import LocalPlatform
from components.platform.protocol import ModelRef
from components.processes import processes_carrying, start_time, state_identity
from tests.support.local_state import two_published_versions

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx: `make test` installs it")
ROW = json.dumps({"instances": [[0.0] * 64]}).encode()
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A state directory with two published digits versions; everything it started is stopped at the end."""
    root = tmp_path_factory.mktemp("kill9")
    with two_published_versions(root) as uris:
        yield root, uris


@pytest.fixture(autouse=True)
def keep_state_dir(published, monkeypatch):
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(published[0]))


def meshserve(root, *args, kill_at=""):
    """Run the CLI as its own process (killing itself at `kill_at`, when given)."""
    program = ["-m", "tests.support.kill_at", kill_at, "--"] if kill_at else ["-m", "pipelines.cli"]
    return subprocess.run([sys.executable, *program, *args], cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "MESHSERVE_STATE_DIR": str(root)})


def tracks(status):
    model = status.model("digits")
    return {version.track: version for version in model.versions} if model else {}


def at_primary_only(root, uris, canary_percent=None):
    """Bring the state to one primary (and, with `canary_percent`, a canary of the other version)."""
    platform = LocalPlatform(root)
    current = tracks(platform.status())
    if "canary" in current:
        platform.rollback(ModelRef("digits"))
    if "primary" not in tracks(platform.status()):
        platform.deploy_version("digits", uris[0])
        platform.promote(ModelRef("digits"))
    primary = tracks(platform.status())["primary"].version
    other = uris[1] if primary == uris[0].rsplit("/", 1)[1] else uris[0]
    if canary_percent is not None:
        platform.deploy_version("digits", other, canary_percent=canary_percent)
    return other


def served_by(status, requests=120):
    """How many of `requests` each track's replicas answered through the router (by the upstream header)."""
    track_of = {replica.http: version.track for version in tracks(status).values() for replica in version.instances}
    counted = Counter()
    for _ in range(requests):
        request = urllib.request.Request(status.gateway["http"] + "/v1/models/digits:predict", data=ROW,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            counted[track_of.get(response.headers["x-meshserve-upstream"], "unrecorded")] += 1
    return counted


def assert_status_is_the_truth(root):
    status = LocalPlatform(root).status()
    recorded = {replica.pid for version in tracks(status).values() for replica in version.instances}
    live = {pid for pid, environment in processes_carrying(state_identity(root)) if "MESHSERVE_SERVES" in environment}
    assert live == recorded, "a model server runs that status does not show (or the reverse)"
    assert all(version.ready for version in tracks(status).values())
    assert status.gateway_pid and not (root / "journal.json").exists()
    counted = served_by(status)
    for track, version in tracks(status).items():
        share = counted[track] / sum(counted.values())
        low, high = (0.0, 0.0) if version.weight == 0 else (1.0, 1.0) if version.weight == 100 else (0.3, 0.7)
        assert low <= share <= high, f"status says {track} has {version['weight']}%, nginx sent it {share:.0%}"
    assert "unrecorded" not in counted
    return status


CASES = [
    ("deploy", "server-loading", {"primary"}), ("deploy", "router-drain", {"primary"}),
    ("deploy", "routes-saved", {"primary", "canary"}), ("deploy", "state-written", {"primary", "canary"}),
    *[(verb, "router-drain", {"primary", "canary"}) for verb in ("promote", "rollback")],
    *[(verb, step, {"primary"}) for verb in ("promote", "rollback")
      for step in ("routes-saved", "stopping", "state-written")],
]


@pytest.mark.parametrize(("verb", "step", "expected"), CASES, ids=[f"{v}-{s}" for v, s, _ in CASES])
def test_kill_9_at_each_step_converges_on_the_next_command(published, verb, step, expected):
    root, uris = published
    other = at_primary_only(root, uris, canary_percent=None if verb == "deploy" else 50)
    args = ("deploy", "--name", "digits", "--storage-uri", other, "--canary-percent", "50") if verb == "deploy" \
        else (verb, "--name", "digits")
    killed = meshserve(root, *args, kill_at=step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-500:]
    settled = meshserve(root, "local", "status", "--json")
    assert settled.returncode == 0, settled.stderr[-500:]
    recovered = json.loads(settled.stdout)["recovered"]
    assert recovered or step == "server-loading" and verb != "deploy", "the status that settled it says nothing"
    assert set(tracks(assert_status_is_the_truth(root))) == expected
    if "canary" in expected:  # the rollout can still be finished by the next command
        assert meshserve(root, "rollback", "--name", "digits").returncode == 0
        assert set(tracks(assert_status_is_the_truth(root))) == {"primary"}


def test_kill_9_of_the_routers_master_is_restarted_on_the_same_ports(published):
    root, uris = published
    at_primary_only(root, uris, canary_percent=50)
    before = LocalPlatform(root).status()
    os.kill(before.gateway_pid, signal.SIGKILL)
    time.sleep(0.2)
    after = assert_status_is_the_truth(root)
    assert after.gateway["http"] == before.gateway["http"] and after.gateway_pid != before.gateway_pid
    assert any("router was not running" in line for line in after.recovered)


def test_a_copied_state_directory_never_stops_the_live_platform(published, tmp_path):
    root, uris = published
    at_primary_only(root, uris)
    live = LocalPlatform(root).status()
    backup = tmp_path / "backup"
    shutil.copytree(root, backup, ignore=shutil.ignore_patterns("*.lock"))
    assert LocalPlatform(backup).down() == []
    pids = [replica.pid for version in tracks(live).values() for replica in version.instances]
    assert all(start_time(pid) is not None for pid in pids) and start_time(live.gateway_pid) is not None
    assert LocalPlatform(root).status().gateway_pid == live.gateway_pid


def test_down_with_a_corrupt_state_stops_only_its_own_servers(published, tmp_path):
    root, uris = published
    at_primary_only(root, uris)
    neighbour = Path(str(root) + "2")  # the prefix of the other's path: /tmp/x/s beside /tmp/x/s2
    shutil.rmtree(neighbour, ignore_errors=True)
    neighbour.mkdir()
    (neighbour / "platform.json").write_text("{not json")
    serving = [replica.pid for version in tracks(LocalPlatform(root).status()).values()
               for replica in version.instances]
    stopped = LocalPlatform(neighbour).down()
    assert all(start_time(pid) is not None for pid in serving), stopped
    assert served_by(LocalPlatform(root).status(), requests=5)["primary"] == 5


def test_competing_runs_never_undo_each_other(published):
    """Issue 18's sequence: two train-to-serve runs in one state directory. Run A deploys its candidate; run B's
    deploy is refused (A's canary is there), so B fails and its exit handler runs. It must leave A's canary
    alone (it was rolling it back, and then both failed with nothing serving); A then finishes its rollout."""
    from components.errors import InvalidInputError
    from components.steps.deploy.core import run_deploy
    from components.steps.rollout.core import run_finish, run_rollback_if_failed

    root, uris = published
    other = at_primary_only(root, uris)
    deployed = run_deploy("digits", other, canary_percent=50, owner="run-a")
    with pytest.raises(InvalidInputError, match="already has a canary"):
        run_deploy("digits", other, canary_percent=50, owner="run-b")
    said = run_rollback_if_failed("digits", True, owner="run-b")
    assert said.startswith("nothing of this run's to roll back") and "deployed by run-a" in said
    assert set(tracks(assert_status_is_the_truth(root))) == {"primary", "canary"}
    with pytest.raises(InvalidInputError, match="deployed by run-a, not by run-b"):
        run_finish("digits", "promote", owner="run-b")
    assert run_finish("digits", "promote", owner="run-a") == f"promoted {deployed.version}"
    assert set(tracks(assert_status_is_the_truth(root))) == {"primary"}
    assert run_rollback_if_failed("digits", True, owner="run-a").startswith("nothing to roll back")
