"""The local platform with real processes: KServe model servers behind a real nginx on 127.0.0.1."""

import json
import os
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from components.errors import InvalidInputError, PlatformError
from components.manifest import ModelManifest, digest_directory, read_manifest, write_manifest
from components.platform.local import LocalPlatform
from components.platform.protocol import ModelRef
from components.platform.state import processes_of
from components.processes import start_time
from components.routing.nginx import render_config
from components.routing.spec import Endpoint, Route, RoutingSpec
from components.steps.benchmark.core import run_benchmark_step
from components.storage import upload_model
from components.training import TrainConfig, train_model
from tests.support.local_state import two_published_versions

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx: `make test` installs it")
ROW = {"instances": [[0.0] * 64]}


@pytest.fixture(scope="module")
def platform_env(tmp_path_factory):
    """A state directory with two published digits versions (different splits, so different models)."""
    root = tmp_path_factory.mktemp("platform")
    with two_published_versions(root) as uris:
        yield LocalPlatform(root), uris, root


@pytest.fixture(autouse=True)
def keep_state_dir(platform_env, monkeypatch):
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(platform_env[2]))


def predict(platform, headers=None):
    url = platform.status().gateway["http"] + "/v1/models/digits:predict"
    request = urllib.request.Request(url, data=json.dumps(ROW).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def tracks(platform):
    model = platform.status().model("digits")
    return {v.track: v for v in model.versions} if model else {}


def deploy_the_other_version(platform, uris, canary_percent=0):
    """Deploy whichever published version is not the primary (promoting one first if none serves)."""
    if "primary" not in tracks(platform):
        platform.deploy_version("digits", uris[0])
        platform.promote(ModelRef("digits"))
    primary = tracks(platform)["primary"].version
    return platform.deploy_version("digits", uris[1] if primary == uris[0].rsplit("/", 1)[1] else uris[0],
                           canary_percent=canary_percent)


def test_lifecycle_deploy_promote_canary_rollback(platform_env):
    platform, (first, second), _ = platform_env
    platform.deploy_version("digits", first)
    assert tracks(platform)["canary"].weight == 100 and predict(platform) == 200
    platform.promote(ModelRef("digits"))
    assert set(tracks(platform)) == {"primary"} and tracks(platform)["primary"].weight == 100
    canary = platform.deploy_version("digits", second, canary_percent=30)
    assert {t: v.weight for t, v in tracks(platform).items()} == {"primary": 70, "canary": 30}
    assert [predict(platform) for _ in range(10)] == [200] * 10
    assert predict(platform, {"x-meshserve-track": "canary"}) == 200
    with pytest.raises(InvalidInputError, match="already has a canary"):
        platform.deploy_version("digits", second)
    platform.rollback(ModelRef("digits"))
    assert set(tracks(platform)) == {"primary"} and start_time(processes_of(canary)[0].pid) is None
    assert predict(platform, {"x-meshserve-track": "canary"}) == 404


def test_a_model_that_does_not_load_leaves_the_primary_serving(platform_env, tmp_path):
    platform, _, root = platform_env
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.joblib").write_bytes(b"this is not a pickle")
    manifest = read_manifest(root / "m0")
    write_manifest(broken, ModelManifest(**{**manifest.__dict__, "files": digest_directory(broken)}))
    uri = upload_model(broken, "pvc://models/digits").storage_uri
    before = platform.status()
    with pytest.raises(PlatformError, match="^model: digits v[0-9a-f]+ exited while loading"):
        platform.deploy_version("digits", uri)
    after = platform.status()
    assert after.models == before.models and predict(platform) == 200


@pytest.mark.parametrize(("action", "canary_percent"), [("promote", 0), ("rollback", 50)])
def test_promote_or_rollback_under_load_fails_no_request(platform_env, action, canary_percent):
    platform, uris, _ = platform_env
    deploy_the_other_version(platform, uris, canary_percent)
    router = platform.status().gateway["http"]
    results = {}
    load = threading.Thread(target=lambda: results.update(run_benchmark_step(
        router, protocol="kserve-v1", model="digits", payload=json.dumps(ROW), qps=500, duration=6.0)))
    load.start()
    time.sleep(2.0)
    getattr(platform, action)(ModelRef("digits"))
    load.join()
    assert set(tracks(platform)) == {"primary"}
    assert results["counts"]["total"] == 3000
    assert results["counts"]["by_error"] == {} and results["success_ratio"] == 1.0


def test_a_dead_runtime_fails_over_to_the_other_version(platform_env):
    platform, uris, _ = platform_env
    canary = deploy_the_other_version(platform, uris, canary_percent=50)
    os.kill(processes_of(canary)[0].pid, signal.SIGKILL)
    time.sleep(0.2)
    assert [predict(platform) for _ in range(20)] == [200] * 20  # retried on the primary
    assert tracks(platform)["canary"].ready is False and tracks(platform)["primary"].ready is True
    platform.rollback(ModelRef("digits"))


@pytest.mark.parametrize("call, message", [
    (lambda p, u: p.deploy_version("digits", u[1], canary_percent=150), r"^canary_percent: 150 is out of range"),
    (lambda p, u: p.deploy_version("Digits_V2", u[1]), r"^name: 'Digits_V2' is not a valid model name"),
    (lambda p, u: p.promote(ModelRef("nope")), r"^name: no model named 'nope' is deployed"),
    (lambda p, u: p.deploy_version("digits", "pvc://models/digits/v000000000000"),
     r"^storage_uri: .* is not a published"),
])
def test_bad_input_changes_nothing(platform_env, call, message):
    platform, uris, _ = platform_env
    before = platform.status()
    with pytest.raises(InvalidInputError, match=message):
        call(platform, uris)
    assert platform.status() == before


def test_down_stops_what_it_started(platform_env):
    platform, _, _ = platform_env
    pids = [r.pid for v in tracks(platform).values() for r in v.instances]
    router_pid = platform.status().gateway_pid
    platform.down()
    assert all(start_time(pid) is None for pid in pids)
    assert not os.path.exists(f"/proc/{router_pid}/cmdline") or b"nginx" not in open(
        f"/proc/{router_pid}/cmdline", "rb").read()
    assert platform.status().models == ()


def test_router_config_keeps_a_zero_weight_version_as_backup(tmp_path):
    a, b = Endpoint("v1", "127.0.0.1:1", "127.0.0.1:2"), Endpoint("v2", "127.0.0.1:3", "127.0.0.1:4")
    text = render_config(RoutingSpec((Route("m", a, b, 0),)), {"http": 9, "grpc": 10, "l4": 11}, tmp_path, False)
    assert "server 127.0.0.1:1 weight=100 max_fails=1 fail_timeout=3s;" in text
    assert "server 127.0.0.1:3 backup max_fails=1 fail_timeout=3s;" in text
    assert '"m:canary" m_canary;' in text and "least_conn;" in text


def test_router_config_spreads_each_version_weight_over_its_replicas(tmp_path):
    a = Endpoint("v1", "127.0.0.1:1", "127.0.0.1:2", more_replicas=(("127.0.0.1:5", "127.0.0.1:6"),))
    b = Endpoint("v2", "127.0.0.1:3", "127.0.0.1:4")
    text = render_config(RoutingSpec((Route("m", a, b, 10),)), {"http": 9, "grpc": 10, "l4": 11}, tmp_path, False)
    upstream = text[text.index("upstream http_m {"):text.index("}", text.index("upstream http_m {"))]
    # 90% over two replicas (90 each, x1 canary replica) against 10% on one (10, x2 primary replicas): 180/20
    assert [line.split()[1:3] for line in upstream.splitlines() if "server" in line] == [
        ["127.0.0.1:1", "weight=90"], ["127.0.0.1:5", "weight=90"], ["127.0.0.1:3", "weight=20"]]
    pinned = text[text.index("upstream grpc_m_primary {"):]
    assert "server 127.0.0.1:6 weight=100" in pinned[:pinned.index("}")]


def replica_predictions(http: str) -> float:
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("request_predict_seconds_count{"))


def test_replicas_share_the_load_fail_over_and_stop_together(platform_env, capsys):
    from pipelines.cli import main

    platform, uris, _ = platform_env
    platform.down()
    platform.deploy_version("digits", uris[0], replicas=2)
    platform.promote(ModelRef("digits"))
    replicas = tracks(platform)["primary"].instances
    assert len(replicas) == 2 and all(r.ready for r in replicas) and len({r.http for r in replicas}) == 2
    router = platform.status().gateway["http"]
    result = run_benchmark_step(router, protocol="kserve-v1", model="digits", payload=json.dumps(ROW), qps=200,
                                duration=2.0, concurrency=8)
    assert result["success_ratio"] == 1.0
    served = [replica_predictions(r.http) for r in replicas]
    assert sum(served) >= 400 and min(served) >= 0.2 * sum(served), served  # least-connections spreads it
    assert main(["status", "--platform", "local"]) == 0
    assert "ready    2/2" in capsys.readouterr().out
    os.kill(replicas[0].pid, signal.SIGKILL)
    time.sleep(0.2)
    assert [predict(platform) for _ in range(20)] == [200] * 20  # the other replica answers
    assert main(["status", "--platform", "local"]) == 0
    assert "DEGRADED 1/2" in capsys.readouterr().out
    platform.down()
    assert all(start_time(r.pid) is None for r in replicas)


@pytest.mark.parametrize("replicas", [0, 17])
def test_a_replica_count_out_of_range_is_refused(platform_env, replicas):
    platform, uris, _ = platform_env
    with pytest.raises(InvalidInputError, match=rf"^replicas: {replicas} is out of range; pass 1 to 16"):
        platform.deploy_version("digits", uris[0], replicas=replicas)


def test_router_port_in_use_fails_the_first_deploy_cleanly(tmp_path, monkeypatch):
    import socket

    from components.storage.fetch import materialize  # noqa: F401 (the version is published under this root)

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MESHSERVE_ROUTER_HTTP_PORT", str(held.getsockname()[1]))
    model = train_model(TrainConfig(framework="sklearn", dataset="iris"), tmp_path / "m").model_dir
    uri = upload_model(model, "pvc://models/iris").storage_uri
    platform = LocalPlatform(tmp_path)
    try:
        with pytest.raises(PlatformError, match="^router: nginx did not start"):
            platform.deploy_version("iris", uri)
        assert platform.status().models == ()
        assert not any(b"components.serving" in p.read_bytes() and str(tmp_path).encode() in p.read_bytes()
                       for p in __import__("pathlib").Path("/proc").glob("[0-9]*/cmdline") if p.exists())
    finally:
        platform.down()
        held.close()


def test_missing_nginx_says_how_to_install_it(tmp_path, monkeypatch):
    from components.routing import nginx

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no nginx on the PATH
    monkeypatch.setattr(nginx, "DEBIAN_NGINX", tmp_path / "nginx")
    router = nginx.NginxRouter(tmp_path)
    with pytest.raises(InvalidInputError, match=r"^router: nginx is not installed; run `make run`"):
        router.reconcile(Route("m", Endpoint("v1", "127.0.0.1:1", "127.0.0.1:2")))
    assert not (tmp_path / "router" / "routes.json").exists()


def test_a_model_of_an_unknown_framework_is_refused(platform_env, tmp_path):
    from components.compat import import_kserve

    model_for = import_kserve("components.serving.models").model_for
    _, _, root = platform_env
    odd = tmp_path / "odd"
    shutil.copytree(root / "m0", odd)
    manifest = read_manifest(odd)
    write_manifest(odd, ModelManifest(**{**manifest.__dict__, "framework": "pytorch"}))
    with pytest.raises(InvalidInputError, match=r"^model: framework 'pytorch' cannot be served; serve one of"):
        model_for("odd", odd)


def test_promoting_a_dead_canary_is_refused_and_the_primary_keeps_serving(platform_env, capsys):
    """Issue 13, finding 1: promote (and rollback) refuse a target that is not ready; nothing changes."""
    from pipelines.cli import main

    platform, uris, _ = platform_env
    canary = deploy_the_other_version(platform, uris, canary_percent=10)
    os.kill(processes_of(canary)[0].pid, signal.SIGKILL)
    time.sleep(0.2)
    before = tracks(platform)
    assert main(["promote", "--platform", "local", "--name", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot promote digits {canary.version}: it is not ready" in err
    assert {t: (v.version, v.weight) for t, v in tracks(platform).items()} == {
        t: (v.version, v.weight) for t, v in before.items()}
    assert tracks(platform)["primary"].ready and [predict(platform) for _ in range(10)] == [200] * 10
    platform.rollback(ModelRef("digits"))  # onto the healthy primary: allowed
    assert set(tracks(platform)) == {"primary"}


@pytest.mark.parametrize("odd", ["with space", "semi;colon"])
def test_a_state_directory_nginx_cannot_carry_is_refused_before_anything_starts(platform_env, tmp_path, monkeypatch,
                                                                               odd):
    """A state path with a space or `;` would be split by nginx's parser: the deploy is refused first, naming
    MESHSERVE_STATE_DIR, with no model server started and nothing recorded (the model itself is published)."""
    _, uris, root = platform_env
    state = tmp_path / odd
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(state))
    monkeypatch.setenv("MESHSERVE_PVC_ROOT", str(root / "pvc"))
    platform = LocalPlatform(state)
    with pytest.raises(InvalidInputError, match=r"^MESHSERVE_STATE_DIR: the state directory .* cannot carry"):
        platform.deploy_version("digits", uris[0])
    assert platform.status().models == ()
    assert not any(str(state).encode() in p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if p.exists())


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus: `make test` installs it")
def test_the_local_autoscaler_follows_the_load_by_the_hpa_rules_and_no_request_fails(platform_env, tmp_path,
                                                                                        capsys):
    """Scaling under load: new replicas join the router once ready and take their share, removed ones leave it
    before they stop; the HPA's rules decide (TooManyReplicas at the bound, ScaleDownStabilized for the window);
    then `local scale` by hand."""
    from components.benchmark.background import start_background_load
    from components.platform.autoscaler import LocalAutoscaler, ScalingTarget, kept_status
    from pipelines.cli import main

    platform, uris, root = platform_env
    platform.down()
    platform.deploy_version("digits", uris[0], replicas=1)
    platform.promote(ModelRef("digits"))
    platform.metrics_address()  # the router reports every request to the local Prometheus from now on
    autoscaler = LocalAutoscaler(platform, [ScalingTarget("digits", "hpa-qps", 1, 3, 10.0, stabilization_s=3.0)])
    load = start_background_load(platform.status().gateway["http"], "digits", 40, 60, tmp_path / "counts.jsonl")
    seen = []
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(tracks(platform)["primary"].instances) < 3:
            seen += autoscaler.sync()
            time.sleep(1)
        replicas = tracks(platform)["primary"].instances
        assert len(replicas) == 3 and all(r.ready for r in replicas), seen
        assert any(s.reason == "TooManyReplicas" and s.desired == 3 and s.reading > 30 for s in seen), seen
        version = dict(platform.state.records())["digits"].primary
        assert set(platform.router.live_weights("digits")) == set(version.endpoint.addresses("http"))
        time.sleep(2)
        assert all(replica_predictions(r.http) > 0 for r in replicas)  # each new replica takes its share
    finally:
        counts = load.stop()
    assert counts.total > 0 and counts.errors == {}, counts
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(tracks(platform)["primary"].instances) > 1:
        seen += autoscaler.sync()
        time.sleep(1)
    kept = tracks(platform)["primary"].instances
    assert [r.pid for r in kept] == [replicas[0].pid], seen[-5:]
    assert all(start_time(r.pid) is None for r in replicas[1:])  # left the router, then stopped
    assert any(s.reason == "ScaleDownStabilized" for s in seen)  # held for the window before scaling down
    assert [(s.model, s.track, s.desired) for s in kept_status(root)] == [("digits", "primary", 1)]
    assert main(["local", "scale", "digits", "--replicas", "2"]) == 0
    assert "digits primary" in capsys.readouterr().out and len(tracks(platform)["primary"].instances) == 2
    assert platform.scale(ModelRef("digits"), 2) == platform.scale(ModelRef("digits"), 2)  # already so: no change
    with pytest.raises(InvalidInputError, match="^name: digits has no canary; deploy it first"):
        platform.scale(ModelRef("digits"), 2, track="canary")


def test_a_deploy_with_autoscaling_runs_the_autoscaler_beside_the_router_until_down(platform_env, capsys,
                                                                                     monkeypatch):
    from components.platform.autoscaler import AutoscalerProcess
    from components.processes.waiting import wait_for
    from pipelines.cli import main

    platform, uris, root = platform_env
    platform.down()
    deploy = ["deploy", "--platform", "local", "--name", "digits", "--storage-uri", uris[0], "--replicas", "2",
              "--max-replicas", "3", "--scale-target", "80"]
    assert main([*deploy, "--autoscaling", "kpa"]) == 2
    assert "autoscaling: kpa does not run on the local platform; use hpa-qps or hpa-cpu" in capsys.readouterr().err
    assert platform.status().model("digits") is None  # refused before anything started
    monkeypatch.setenv("MESHSERVE_AUTOSCALER_SYNC_S", "0.5")
    assert main([*deploy, "--autoscaling", "hpa-cpu"]) == 0
    pid = AutoscalerProcess(root).pid()
    log = root / "autoscaler" / "autoscaler.log"
    assert pid is not None, f"no autoscaler runs; its log: {log.read_text()[-2000:] if log.is_file() else 'none'}"
    assert len(tracks(platform)["canary"].instances) == 2
    assert wait_for(lambda: len(tracks(platform)["canary"].instances) == 1, 30)  # idle: below target, to min
    assert main(["local", "status"]) == 0
    shown = capsys.readouterr().out
    assert f"autoscaler  pid {pid}" in shown and "digits canary" in shown and "-> 1 replicas" in shown, shown
    assert main(["local", "status", "--json"]) == 0
    autoscaler = json.loads(capsys.readouterr().out)["autoscaler"]
    assert autoscaler["pid"] == pid and autoscaler["last_sync"][-1]["desired"] == 1
    assert main(["local", "autoscale", "digits", "--autoscaling", "hpa-cpu", "--max-replicas", "2",
                 "--scale-target", "50"]) == 0  # a new target for the running process
    assert f"autoscaler pid {pid}" in capsys.readouterr().out
    assert [(t.model, t.max_replicas, t.target) for t in AutoscalerProcess(root).targets()] == [("digits", 2, 50.0)]
    assert f"autoscaler (pid {pid})" in platform.down()
    assert start_time(pid) is None and AutoscalerProcess(root).pid() is None
