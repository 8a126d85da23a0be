"""The local model mesh: versions placed on a shared pool of real KServe runtimes behind the real nginx router,
reached through every runtime (`service`, forwarding inside the mesh) or only through their holders
(`model-aware`), with per-model rollouts."""

import json
import shutil
import urllib.error
import urllib.request
from collections import Counter

import pytest

from components.errors import InvalidInputError
from components.platform.local import LocalPlatform
from components.platform.protocol import ModelRef
from components.processes import processes_carrying, state_identity
from components.serving.mesh_runtime import FORWARDED_HEADER, RUNTIME_HEADER
from tests.support.local_state import two_published_versions

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx: `make test` installs it")
MESH = "modelmesh"
# seed 000's request form: v2 REST with the values as gRPC's `contents`, sent without a JSON content type
SEED_FORM = {"inputs": [{"name": "inputs", "shape": [1, 64], "datatype": "FP32",
                         "contents": {"fp32_contents": [0.0] * 64}}]}


@pytest.fixture(scope="module")
def mesh_env(tmp_path_factory):
    """A state directory with two published digits versions; everything stopped at the end."""
    root = tmp_path_factory.mktemp("mesh")
    with two_published_versions(root) as uris:
        yield LocalPlatform(root), uris, root


@pytest.fixture(autouse=True)
def keep_state_dir(mesh_env, monkeypatch):
    monkeypatch.setenv("MESHSERVE_STATE_DIR", str(mesh_env[2]))
    yield
    mesh_env[0].down()


def infer(platform, model, headers=None):
    """One seed-form request for `model` through the router: (status, the answer's headers, its model name)."""
    url = f"{platform.status().gateway['http']}/v2/models/{model}/infer"
    request = urllib.request.Request(url, data=json.dumps(SEED_FORM).encode(), method="POST",
                                     headers={"model": model, "Content-Type": "application/octet-stream",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())["model_name"]
    except urllib.error.HTTPError as error:
        return error.code, error.headers, ""


def deploy_two_models(platform, uris, routing):
    for name, uri in (("digits", uris[0]), ("numbers", uris[1])):
        platform.deploy_version(name, uri, runtime=MESH, runtime_options={"routing": routing})
        platform.promote(ModelRef(name))


def holders(status):
    """Model name -> the runtime label holding its versions, as status shows the placement."""
    return {held.split()[0]: runtime.label for runtime in status.mesh_runtimes for held in runtime.holds}


def test_service_routing_forwards_inside_the_mesh_and_answers_from_the_holder(mesh_env):
    platform, uris, _ = mesh_env
    deploy_two_models(platform, uris, "service")
    status = platform.status()
    assert status.mesh_routing == "service"
    held_by = holders(status)
    assert sorted(held_by.values()) == ["runtime-0", "runtime-1"]  # one model each, on the least-loaded runtime
    for runtime in status.mesh_runtimes:  # every runtime forwards the model it does not hold
        assert len(runtime.holds) == 1 and len(runtime.forwards) == 1 and runtime.forwards != runtime.holds
    for model in ("digits", "numbers"):
        answers = [infer(platform, model) for _ in range(40)]
        assert {code for code, _, _ in answers} == {200}
        assert {headers[RUNTIME_HEADER] for _, headers, _ in answers} == {held_by[model]}
        forwarded = Counter(headers.get(FORWARDED_HEADER) for _, headers, _ in answers)
        # the router balances over both runtimes: some requests went straight to the holder, some took a hop
        assert forwarded[None] >= 5 and sum(forwarded.values()) - forwarded[None] >= 5, forwarded
        assert {name for _, _, name in answers} == {f"{model}__{platform.workload(ModelRef(model), 'primary')}"}
    version = next(v for v in status.model("digits").versions if v.track == "primary")
    assert sorted(instance.role for instance in version.instances) == ["forwards", "holds"]


def test_model_aware_routing_sends_each_request_to_a_holder(mesh_env):
    platform, uris, _ = mesh_env
    deploy_two_models(platform, uris, "model-aware")
    status = platform.status()
    assert status.mesh_routing == "model-aware"
    assert all(not runtime.forwards for runtime in status.mesh_runtimes)
    held_by = holders(status)
    for model in ("digits", "numbers"):
        answers = [infer(platform, model) for _ in range(20)]
        assert {code for code, _, _ in answers} == {200}
        assert {headers[RUNTIME_HEADER] for _, headers, _ in answers} == {held_by[model]}
        assert not any(headers.get(FORWARDED_HEADER) for _, headers, _ in answers)
    refused = r"^runtime_options\.routing: the local model mesh runs with routing=model-aware while it serves models"
    with pytest.raises(InvalidInputError, match=refused):
        platform.deploy_version("digits", uris[1], runtime=MESH, runtime_options={"routing": "service"})
    with pytest.raises(InvalidInputError, match=r"^replicas: 3 copies do not fit a pool of 2 runtimes"):
        platform.deploy_version("digits", uris[1], replicas=3, runtime=MESH)
    with pytest.raises(InvalidInputError, match=r"^runtime_options\.cache: is not an option of the local model mesh"):
        platform.deploy_version("digits", uris[1], runtime=MESH, runtime_options={"cache": "1"})
    assert platform.status().model("digits").tracks() == {"primary": status.model("digits").tracks()["primary"]}


def test_a_canary_on_the_mesh_splits_its_model_and_promote_and_rollback_release_it(mesh_env):
    platform, uris, root = mesh_env
    platform.deploy_version("digits", uris[0], runtime=MESH)
    platform.promote(ModelRef("digits"))
    canary = platform.deploy_version("digits", uris[1], canary_percent=30, runtime=MESH)
    served = Counter(infer(platform, "digits")[2] for _ in range(200))
    assert served[f"digits__{canary.version}"] in range(35, 86), served  # 30% of 200, within +-25
    assert platform.status().model("digits").tracks()["canary"] == canary.version
    platform.promote(ModelRef("digits"))
    placed = [held for runtime in platform.status().mesh_runtimes for held in runtime.holds + runtime.forwards]
    assert placed == [f"digits {canary.version}"] * 2  # the old primary was released on both runtimes
    platform.deploy_version("digits", uris[0], canary_percent=50, runtime=MESH)
    platform.rollback(ModelRef("digits"))
    placed = [held for runtime in platform.status().mesh_runtimes for held in runtime.holds + runtime.forwards]
    assert placed == [f"digits {canary.version}"] * 2
    assert {infer(platform, "digits")[2] for _ in range(20)} == {f"digits__{canary.version}"}
    pool = {pid for pid, environment in processes_carrying(state_identity(root))
            if environment.get("MESHSERVE_SERVES", "").startswith(f"{MESH}/")}
    assert len(pool) == 2
    platform.down()
    assert not [pid for pid, _ in processes_carrying(state_identity(root)) if pid in pool]
    assert platform.status().mesh_routing == ""
