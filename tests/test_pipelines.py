"""The compiled pipelines and WorkflowTemplates: strictly parsed, linted, and the two wrappers of each step agree."""

from __future__ import annotations

import importlib
import inspect
import json
import typing
from pathlib import Path

import pytest
import yaml

from pipelines.compile import COMPILED_DIR, GOLDEN_FILES, REPO_ROOT
from tests.conftest import shared_path
from tests.support.argo_dag import lint
from tests.support.schemas import argo_errors

STEPS = REPO_ROOT / "components" / "steps"
KFP_FILES = sorted(COMPILED_DIR.glob("*.kfp.yaml")) + sorted(STEPS.glob("*/*component*.yaml"))
ARGO_FILES = sorted(COMPILED_DIR.glob("*.argo.yaml"))
# Outputs only one wrapper has, each for a reason; every input must agree.
WRAPPER_ONLY = {
    # KFP's UI visualizations (Metrics, Markdown, ClassificationMetrics), and the manifest as an artifact of its
    # own (Argo's gate reads it from the model directory artifact instead)
    "kfp": {"metrics", "explanation", "confusion", "manifest", "model_digest"},
    # Argo output parameters for `when` expressions and the Argo UI (KFP puts these in artifacts' metadata)
    "hera": {"p99_ms", "success_ratio", "accuracy", "model_digest"},
}


def kfp_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", KFP_FILES, ids=lambda p: p.name)
def test_compiled_kfp_yaml_parses_strictly_as_a_pipeline_spec(path):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    documents = kfp_documents(path)
    specs = [doc for doc in documents if "pipelineInfo" in doc]
    assert specs, f"{path.name} holds no PipelineSpec"
    for doc in specs:
        json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    for doc in documents:
        if "platforms" in doc:
            json_format.ParseDict(doc, pipeline_spec_pb2.PlatformSpec(), ignore_unknown_fields=False)


def test_the_strict_parse_rejects_an_unknown_field():
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = kfp_documents(COMPILED_DIR / "train_to_serve.kfp.yaml")[0]
    spec["root"]["dagg"] = {}
    with pytest.raises(json_format.ParseError, match="dagg"):
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)


def test_the_kfp_task_graph_rolls_out_progressively_inside_the_exit_handler():
    spec, platform = kfp_documents(COMPILED_DIR / "train_to_serve.kfp.yaml")
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"exit-handler-1", "roll-back-on-failure"}
    assert root["roll-back-on-failure"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    inner = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert set(inner) == {"train", "upload", "deploy", "progressive-rollout"}
    rollout = inner["progressive-rollout"]["inputs"]
    assert rollout["artifacts"]["baseline_manifest"]["taskOutputArtifact"] == {
        "outputArtifactKey": "baseline_manifest", "producerTask": "deploy"}
    assert rollout["parameters"]["budget_s"] == {"componentInputParameter": "pipelinechannel--budget_s"}
    assert rollout["parameters"]["rollout_policy"] == {"componentInputParameter": "pipelinechannel--rollout_policy"}
    mounts = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert mounts["exec-upload"]["pvcMount"][0]["pvcNameParameter"] == {
        "componentInputParameter": "pipelinechannel--models_claim"}  # the claim is a run parameter
    assert mounts["exec-deploy"]["secretAsVolume"][0]["secretNameParameter"] == {
        "componentInputParameter": "pipelinechannel--storage_secret"}
    for task in (inner["deploy"], inner["progressive-rollout"], root["roll-back-on-failure"]):  # the run's canary
        assert task["inputs"]["parameters"]["owner"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert {"platform", "namespace", "runtime", "router", "autoscaling", "canary_percent", "cpu", "memory",
            "node_selector", "tolerations", "models_claim", "storage_secret"} <= set(inputs)


@pytest.mark.parametrize("path", ARGO_FILES, ids=lambda p: p.name)
def test_workflow_templates_are_strictly_valid_and_lint_clean(path):
    template = yaml.safe_load(path.read_text())
    assert argo_errors(shared_path("schemas", "argo", "schema.json"), "WorkflowTemplate", template) == []
    assert lint(template) == []


def test_the_lint_finds_dangling_references():
    template = yaml.safe_load((COMPILED_DIR / "train_to_serve.argo.yaml").read_text())
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "train-to-serve")
    tasks = {t["name"]: t for t in dag["dag"]["tasks"]}
    tasks["progressive-rollout"]["depends"] = "deploi"
    tasks["progressive-rollout"]["arguments"]["parameters"][0]["value"] = "{{tasks.deploy.outputs.parameters.nam}}"
    tasks["upload"]["arguments"]["parameters"] = []
    template["spec"]["volumes"] = template["spec"]["volumes"][:1]
    assert sorted(lint(template)) == sorted([
        "progressive-rollout: depends on unknown task deploi",
        "progressive-rollout: deploy has no parameters nam",
        "upload: required input to has no argument",
        "deploy: volume storage-secret is not declared", "upload: volume storage-secret is not declared"])


def test_the_argo_train_to_serve_dag():
    template = yaml.safe_load((COMPILED_DIR / "train_to_serve.argo.yaml").read_text())
    assert template["spec"]["onExit"] == "exit-handler" and template["spec"]["serviceAccountName"] == "meshserve-steps"
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "train-to-serve")
    shape = {t["name"]: t.get("depends") for t in dag["dag"]["tasks"]}
    assert shape == {"train": None, "upload": "train", "deploy": "upload", "progressive-rollout": "deploy"}
    rollout = next(t for t in dag["dag"]["tasks"] if t["name"] == "progressive-rollout")
    assert {a["name"] for a in rollout["arguments"]["artifacts"]} == {
        "candidate-manifest", "baseline-manifest"}  # accuracy checks too


def _steps_with_both_wrappers() -> list[tuple[str, str]]:
    found = []
    for step in sorted(p.name for p in STEPS.iterdir() if (p / "kfp_component.py").exists()):
        kfp = importlib.import_module(f"components.steps.{step}.kfp_component")
        hera = importlib.import_module(f"components.steps.{step}.hera_template")
        for name, obj in vars(kfp).items():
            if getattr(getattr(obj, "python_func", None), "__module__", None) == kfp.__name__:
                assert hasattr(hera, name), f"{step}: the KFP component {name} has no Hera template"
                found.append((step, name))
    return found


def _kfp_signature(component) -> tuple[dict, set]:
    from kfp.dsl import PipelineTaskFinalStatus

    signature = inspect.signature(component.python_func)
    inputs, outputs = {}, set()
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if "Output" in str(annotation):
            outputs.add(name)
        elif annotation is not PipelineTaskFinalStatus:
            inputs[name] = (_base_type(annotation), _default(parameter))
    returned = signature.return_annotation
    outputs |= set(getattr(returned, "_fields", ()))
    return inputs, outputs


def _hera_signature(template) -> tuple[dict, set]:
    signature = inspect.signature(template.__wrapped__ if hasattr(template, "__wrapped__") else template)
    inputs, outputs = {}, set()
    for name, parameter in signature.parameters.items():
        metadata = getattr(parameter.annotation, "__metadata__", ())
        if any(getattr(m, "output", False) for m in metadata):
            outputs.add(name)
        else:
            base = typing.get_args(parameter.annotation)[0] if metadata else parameter.annotation
            inputs[name] = (_base_type(base), _default(parameter))
    return inputs, outputs


def _base_type(annotation):
    """A comparable type: "artifact" for KFP's Input[...] and Hera's Path inputs; Optional[X] is X."""
    if "InputAnnotation" in str(annotation) or annotation is Path:
        return "artifact"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union and len(args) == 1:
        return _base_type(args[0])
    return typing.get_origin(annotation) or annotation


def _default(parameter):
    return None if parameter.default is inspect.Parameter.empty else parameter.default


@pytest.mark.parametrize("step, name", _steps_with_both_wrappers(), ids="/".join)
def test_the_kfp_and_hera_wrappers_of_a_step_agree(step, name):
    kfp = importlib.import_module(f"components.steps.{step}.kfp_component")
    hera = importlib.import_module(f"components.steps.{step}.hera_template")
    kfp_inputs, kfp_outputs = _kfp_signature(getattr(kfp, name))
    hera_inputs, hera_outputs = _hera_signature(getattr(hera, name))
    if name == "roll_back_on_failure":  # KFP hands the exit task the run's status object, Argo a string
        hera_inputs.pop("workflow_status")
    assert kfp_inputs == hera_inputs
    assert kfp_outputs - hera_outputs <= WRAPPER_ONLY["kfp"]
    assert hera_outputs - kfp_outputs <= WRAPPER_ONLY["hera"]


def test_every_component_and_template_is_compiled_and_golden():
    golden = {path.read_text() for path in GOLDEN_FILES if path.suffix == ".yaml" and path.exists()}
    text = "\n".join(golden)
    for step, name in _steps_with_both_wrappers():
        assert f"comp-{name.replace('_', '-')}" in text, f"{step}/{name}: no committed KFP YAML"
    argo = "\n".join(path.read_text() for path in ARGO_FILES)
    for step, name in _steps_with_both_wrappers():
        hera = getattr(importlib.import_module(f"components.steps.{step}.hera_template"), name)
        template_name = json.loads(json.dumps(getattr(hera, "name", None) or name.replace("_", "-")))
        assert f"name: {template_name}" in argo, f"{step}/{name}: no compiled Argo template uses it"
