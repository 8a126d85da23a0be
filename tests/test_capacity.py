"""`meshserve capacity` against a real model server: bounded open-loop steps, each decided by the sequential
analysis; a fast model climbs to the plan's top, a 20 ms model is beyond a 10 ms p99 at once, a failing one is
beyond on its failures; the JSON and the report say where the scale target came from."""

import json

import pytest

from components.capacity.search import CapacitySlo, Look, SearchPlan, search_capacity
from components.errors import InvalidInputError
from pipelines.cli import main

FAST = ["--start-qps", "200", "--step-qps", "200", "--max-qps", "400", "--look-seconds", "1", "--max-looks", "4"]


def capacity(server, model, tmp_path, *flags):
    return main(["capacity", server.http_url, "--protocol", "kserve-v1", "--model", model, "--payload",
                 '{"instances": [[1, 2, 3, 4]]}', *FAST, "--json", str(tmp_path / "c.json"), "--html",
                 str(tmp_path / "c.html"), *flags])


def test_a_fast_model_is_within_at_every_rate_and_gives_a_scale_target_with_its_source(inference_server, tmp_path,
                                                                                      capsys):
    assert capacity(inference_server, "echo", tmp_path) == 0
    document = json.loads((tmp_path / "c.json").read_text())
    assert [(step["qps"], step["verdict"]) for step in document["steps"]] == [(200, "within"), (400, "within")]
    assert all(step["slow"] / step["requests"] < 0.01 and step["requests"] >= 400 for step in document["steps"])
    assert document["capacity_qps"] == 400 and document["scale_target"] == 280
    assert document["scale_target_source"].startswith("meshserve capacity: 400 qps per replica within p99 <= 10 ms")
    assert "capacity: 400 qps per replica" in capsys.readouterr().out
    assert "data:image/png;base64," in (tmp_path / "c.html").read_text()


@pytest.mark.parametrize("model, why", [("slow", "slower than 10 ms: p99 above the SLO"),
                                        ("broken", "failure rate at least")])
def test_a_model_beyond_the_slo_at_the_first_rate_has_no_capacity(inference_server, tmp_path, model, why):
    assert capacity(inference_server, model, tmp_path) == 4
    [step] = json.loads((tmp_path / "c.json").read_text())["steps"]
    assert step["verdict"] == "beyond" and why in step["why"] and step["looks"] == 1


def test_a_step_that_cannot_decide_is_inconclusive_and_stops_the_search():
    looks = iter([Look(100, 100, 100, 0, [5.0] * 98 + [20.0] * 2)] * 3)  # 2% slow: near 1%, never shown either way
    result = search_capacity(lambda qps, seconds: next(looks), SearchPlan(100, 100, 300, 1, 3), CapacitySlo())
    assert [step.verdict for step in result.steps] == ["inconclusive"] and result.capacity_qps is None


def test_a_rate_the_load_cannot_reach_is_beyond():
    result = search_capacity(lambda qps, seconds: Look(qps, qps * 0.8, int(qps), 0, [1.0] * int(qps)),
                             SearchPlan(100, 100, 300, 1, 3), CapacitySlo())
    assert result.steps[0].verdict == "beyond" and "saturated" in result.steps[0].why


def test_a_plan_out_of_range_is_refused_naming_the_field():
    with pytest.raises(InvalidInputError, match="^max_qps: 50 is below start_qps 100"):
        search_capacity(lambda qps, seconds: None, SearchPlan(100, 100, 50), CapacitySlo())


def test_local_autoscale_takes_its_target_from_the_capacity_search_with_its_source(tmp_path):
    from pipelines.cli import _scale_target

    (tmp_path / "c.json").write_text(json.dumps({"scale_target": 280.0, "scale_target_source": "meshserve capacity: "
                                                 "400 qps per replica within p99 <= 10 ms, times headroom 0.7"}))
    assert _scale_target("auto", str(tmp_path / "c.json")) == (
        280.0, "meshserve capacity: 400 qps per replica within p99 <= 10 ms, times headroom 0.7")
    assert _scale_target("12.5", None) == (12.5, "given")
    for given, capacity_file, says in [("auto", None, "capacity: --scale-target auto needs"),
                                       ("ten", None, "scale_target: 'ten' is not a number")]:
        with pytest.raises(InvalidInputError, match=f"^{says}"):
            _scale_target(given, capacity_file)
    (tmp_path / "none.json").write_text(json.dumps({"scale_target": None}))
    with pytest.raises(InvalidInputError, match="holds no scale target"):
        _scale_target("auto", str(tmp_path / "none.json"))


@pytest.mark.parametrize("flags, kind", [
    (["--runtime", "tfserving", "--model-format", "tensorflow", "--storage-uri", "pvc://models/m/v1",
      "--autoscaling", "hpa-qps"], "HorizontalPodAutoscaler"),
    (["--model-format", "sklearn", "--storage-uri", "s3://b/m/v1", "--autoscaling", "kpa", "--scale-metric", "rps"],
     "InferenceService")])
def test_a_rendered_autoscaler_takes_the_capacity_s_target_and_says_where_it_came_from(tmp_path, capsys, flags,
                                                                                         kind):
    import yaml

    from tests.conftest import shared_path
    from tests.support.schemas import kube_object_errors

    (tmp_path / "c.json").write_text(json.dumps({"scale_target": 2450.7, "scale_target_source": "meshserve "
                                                 "capacity: 3501 qps per replica, times headroom 0.7"}))
    assert main(["render", "--name", "m", *flags, "--max-replicas", "10", "--scale-target", "auto", "--capacity",
                 str(tmp_path / "c.json")]) == 0
    [rendered] = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o and o["kind"] == kind]
    assert rendered["metadata"]["annotations"]["meshserve.io/scale-target-source"] == (
        "meshserve capacity: 3501 qps per replica, times headroom 0.7")
    target = (rendered["spec"]["metrics"][0]["external"]["target"]["averageValue"] if kind != "InferenceService"
              else rendered["spec"]["predictor"]["scaleTarget"])
    assert str(target) == "2450"
    assert kube_object_errors(shared_path("schemas"), rendered) == []
    assert main(["render", "--name", "m", *flags, "--capacity", str(tmp_path / "c.json")]) == 2
    assert "capacity: is read only with --scale-target auto" in capsys.readouterr().err
    cpu = [flag if flag not in ("hpa-qps", "kpa") else "hpa-cpu" for flag in flags[:flags.index("--autoscaling") + 2]]
    assert main(["render", "--name", "m", *cpu, "--max-replicas", "10", "--scale-target", "auto", "--capacity",
                 str(tmp_path / "c.json")]) == 2
    assert "a capacity is requests per second, and hpa-cpu scales on CPU" in capsys.readouterr().err
