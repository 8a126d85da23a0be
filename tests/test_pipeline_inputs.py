"""What a pipeline run can set: every field of the deployment spec reaches the deploy step from the KFP and the
Argo pipeline's inputs (walked from the spec's own fields), and the analysis speaks the runtime's protocol unless
the `protocol` input names another."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from components.deployment.spec import DeploymentSpec
from components.steps.deploy.core import cluster_spec_fields, run_deploy

COMPILED = Path(__file__).resolve().parents[1] / "pipelines" / "compiled"
# Fields no run input sets, and who sets them instead.
SET_BY_THE_RUN = {
    "version": "the upload step's version, read from the published model's manifest",
    "primary_version": "the platform, from the rollout record",
    "baseline_version": "the analysis, for its copy of the primary",
}
_STEP_INPUT = {"version": "version_name"}  # a deploy input named otherwise than cluster_spec_fields' parameter


def spec_leaves(kind: type = DeploymentSpec, prefix: str = "") -> list[str]:
    """Every leaf field of the spec, dotted (autoscaling.target, storage.secret, ...)."""
    leaves = []
    for field in dataclasses.fields(kind):
        nested = field.type if isinstance(field.type, type) else None
        kinds = {"Autoscaling", "Resources", "Placement", "StorageAccess"}
        if str(field.type) in kinds:
            nested = inspect.getmodule(DeploymentSpec).__dict__[str(field.type)]
        if nested is not None and dataclasses.is_dataclass(nested):
            leaves += spec_leaves(nested, f"{prefix}{field.name}.")
        else:
            leaves.append(prefix + field.name)
    return leaves


def reached_by() -> dict[str, str]:
    """Spec leaf -> the deploy step's input that sets it, found by giving each input a value of its own and
    seeing where it lands (a mapping input reaches every leaf under the key it is merged into)."""
    reached = {"name": "name", "storage_uri": "storage_uri", "canary_percent": "canary_percent"}  # run_deploy's
    for parameter in inspect.signature(cluster_spec_fields).parameters.values():
        probe = {"probe": "x"} if "dict" in str(parameter.annotation) else f"probe-{parameter.name}"
        if "list" in str(parameter.annotation):
            probe = ["probe"]
        elif "int" in str(parameter.annotation):
            probe = 987654
        for path in _paths_holding(cluster_spec_fields(**{parameter.name: probe}), probe):
            reached[path] = _STEP_INPUT.get(parameter.name, parameter.name)
    return reached


def _paths_holding(mapping: dict, probe, prefix: str = "") -> list[str]:
    found = []
    for key, value in mapping.items():
        if value == probe:
            found.append(prefix + key)
        elif isinstance(value, dict) and isinstance(probe, dict) and probe.items() <= value.items():
            found.append(prefix + key + ".*")
        elif isinstance(value, dict):
            found += _paths_holding(value, probe, f"{prefix}{key}.")
    return found


def _input_for(leaf: str, reached: dict[str, str]) -> str | None:
    parent = leaf.rsplit(".", 1)[0] + ".*" if "." in leaf else ""
    return reached.get(leaf) or reached.get(parent)


def kfp_deploy_inputs() -> set[str]:
    """The deploy task's inputs the KFP pipeline binds (to a run input or another task's output)."""
    pipeline = next(doc for doc in yaml.safe_load_all((COMPILED / "train_to_serve.kfp.yaml").read_text())
                    if doc and "root" in doc)
    handler = next(component for component in pipeline["components"].values()
                   if "deploy" in component.get("dag", {}).get("tasks", {}))
    return set(handler["dag"]["tasks"]["deploy"]["inputs"]["parameters"])


def argo_deploy_inputs() -> set[str]:
    """The deploy task's arguments in the Argo WorkflowTemplate."""
    template = yaml.safe_load((COMPILED / "train_to_serve.argo.yaml").read_text())
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "train-to-serve")["dag"]
    task = next(t for t in dag["tasks"] if t["name"] == "deploy")
    return {parameter["name"] for parameter in task["arguments"]["parameters"]}


def test_the_walk_sees_every_field_of_the_spec():
    leaves = spec_leaves()
    assert {"autoscaling.target", "autoscaling.selector", "storage.secret", "placement.tolerations",
            "service_account", "router_options"} <= set(leaves)
    reached = reached_by()
    assert [leaf for leaf in leaves if leaf not in SET_BY_THE_RUN and _input_for(leaf, reached) is None] == []


@pytest.mark.parametrize("pipeline, bound", [("kfp", kfp_deploy_inputs), ("argo", argo_deploy_inputs)])
def test_every_field_of_the_spec_is_reachable_from_the_pipeline(pipeline, bound):
    reached, inputs = reached_by(), bound()
    unreachable = [f"{leaf} (input {_input_for(leaf, reached)})" for leaf in spec_leaves()
                   if leaf not in SET_BY_THE_RUN and _input_for(leaf, reached) not in inputs]
    assert unreachable == []


def test_a_run_input_reaches_the_rendered_objects():
    """One of the fields the pipelines could not set before: the HPA's QPS target and metric selector."""
    from components.deployment.spec import spec_from_mapping
    from components.platform.kubernetes.render import render_deployment

    fields = cluster_spec_fields(runtime="tfserving", model_format="tensorflow", autoscaling="hpa-qps",
                                 max_replicas=10, scale_target=25, metric_selector={"sls.logstore": "ingress"})
    hpa = next(obj for obj in render_deployment(spec_from_mapping(
        {"name": "bert", "storage_uri": "pvc://models/bert/v1", "version": "v1", **fields}))
        if obj["kind"] == "HorizontalPodAutoscaler")
    metric = hpa["spec"]["metrics"][0]["external"]
    assert metric["target"]["averageValue"] == "25" and metric["metric"]["selector"]["matchLabels"] == {
        "sls.logstore": "ingress"}
    assert run_deploy  # the step that takes these fields (its signature is what the walk reads)


def _rollout_protocol_binding(pipeline: str) -> str:
    if pipeline == "kfp":
        spec = next(doc for doc in yaml.safe_load_all((COMPILED / "train_to_serve.kfp.yaml").read_text())
                    if doc and "root" in doc)
        handler = next(c for c in spec["components"].values()
                       if "progressive-rollout" in c.get("dag", {}).get("tasks", {}))
        default = spec["root"]["inputDefinitions"]["parameters"]["protocol"].get("defaultValue")
        binding = handler["dag"]["tasks"]["progressive-rollout"]["inputs"]["parameters"]["protocol"]
        return f"{binding['componentInputParameter']} default {default!r}"
    template = yaml.safe_load((COMPILED / "train_to_serve.argo.yaml").read_text())
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "train-to-serve")["dag"]
    task = next(t for t in dag["tasks"] if t["name"] == "progressive-rollout")
    default = next(p for p in template["spec"]["arguments"]["parameters"] if p["name"] == "protocol").get("value")
    return f"{next(p['value'] for p in task['arguments']['parameters'] if p['name'] == 'protocol')} default {default!r}"


def test_both_pipelines_leave_the_protocol_to_the_runtime_unless_a_run_input_names_one():
    assert _rollout_protocol_binding("kfp") == "pipelinechannel--protocol default ''"
    assert _rollout_protocol_binding("argo") == "{{workflow.parameters.protocol}} default ''"


@pytest.mark.parametrize("runtime, protocol", [("kserve", "kserve-v1"), ("kserve-raw", "kserve-v1"),
                                               ("modelmesh", "v2-grpc"), ("ovms", "v2-grpc"),
                                               ("tfserving", "tfserving-rest")])
def test_each_runtime_names_its_own_protocol_first(runtime, protocol):
    from components.runtimes.base import runtime_for

    assert runtime_for(runtime).protocols[0] == protocol


def test_a_protocol_the_server_does_not_speak_is_refused_before_any_load():
    from components.errors import InvalidInputError
    from components.rollout.contract import AnalysisSides
    from components.steps.analyze.core import Load, load_protocol

    sides = AnalysisSides("http://gateway", protocols=("tfserving-rest", "tfserving-grpc"))
    assert load_protocol(sides, Load()) == "tfserving-rest"
    assert load_protocol(sides, Load(protocol="tfserving-grpc")) == "tfserving-grpc"
    with pytest.raises(InvalidInputError, match="^protocol: the deployed server does not speak kserve-v1"):
        load_protocol(sides, Load(protocol="kserve-v1"))
