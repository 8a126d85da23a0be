"""Argo's linter checks, and a DAG runner for a compiled WorkflowTemplate's Python steps (Hera's runner).

`lint` finds what `argo lint` would: a task naming a template that does not exist, a `depends` on an
unknown task, a reference to an output a task's template does not declare, a volume mount with no
volume, a required input with no argument. `run_dag` executes a DAG as Argo does for script
templates: in dependency order, `when` evaluated, `depends` with Argo's meaning (`X` = X succeeded or
was skipped; `X.Succeeded` = X succeeded), each step run through Hera's runner with its inputs in a file
and its artifacts at the declared input paths, then the exit handler with `{{workflow.status}}`. Who runs
a step is the executor's business: `run_here` (a process on this machine) or, in tests/support/kube_jobs.py,
a Kubernetes Job, as Argo's controller would create a pod.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_REFERENCE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


def lint(workflow: dict) -> list[str]:
    """Every dangling reference in a WorkflowTemplate (empty when there is none)."""
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    problems = []
    volumes = {v["name"] for v in workflow["spec"].get("volumes", [])}
    parameters = {p["name"] for p in workflow["spec"].get("arguments", {}).get("parameters", [])}
    for entry in ("entrypoint", "onExit"):
        if workflow["spec"].get(entry) and workflow["spec"][entry] not in templates:
            problems.append(f"{entry}: no template {workflow['spec'][entry]}")
    for template in templates.values():
        for mount in (template.get("script") or template.get("container") or {}).get("volumeMounts", []):
            if mount["name"] not in volumes:
                problems.append(f"{template['name']}: volume {mount['name']} is not declared")
        tasks = {t["name"]: t for t in (template.get("dag") or {}).get("tasks", [])}
        for task in tasks.values():
            problems += _task_problems(task, tasks, templates, parameters)
    return problems


def _task_problems(task: dict, tasks: dict, templates: dict, parameters: set) -> list[str]:
    name = task["name"]
    if task["template"] not in templates:
        return [f"{name}: no template {task['template']}"]
    problems = [f"{name}: depends on unknown task {dep}" for dep in re.findall(r"[A-Za-z0-9-]+(?=\.|\b)",
                                                                              task.get("depends", ""))
                if dep not in tasks and dep not in ("Succeeded", "Failed", "Skipped", "Errored", "Daemoned")]
    arguments = task.get("arguments", {})
    for reference in _references(json.dumps(arguments) + task.get("when", "")):
        problems += _reference_problem(name, reference, tasks, templates, parameters)
    for artifact in arguments.get("artifacts", []):
        if "from" in artifact:
            problems += _reference_problem(name, artifact["from"].strip("{} "), tasks, templates, parameters)
    given = {p["name"] for p in arguments.get("parameters", [])} | {a["name"] for a in arguments.get("artifacts", [])}
    inputs = templates[task["template"]].get("inputs", {})
    for declared in inputs.get("parameters", []) + inputs.get("artifacts", []):
        if "default" not in declared and "value" not in declared and not declared.get("optional") \
                and declared["name"] not in given:
            problems.append(f"{name}: required input {declared['name']} has no argument")
    return problems


def _references(text: str) -> list[str]:
    return _REFERENCE.findall(text)


def _reference_problem(name: str, reference: str, tasks: dict, templates: dict, parameters: set) -> list[str]:
    parts = reference.split(".")
    if parts[0] == "workflow":
        ok = parts[1] in ("status", "uid") or (parts[1] == "parameters" and parts[2] in parameters)
        return [] if ok else [f"{name}: unknown {reference}"]
    if parts[0] == "tasks":
        producer, kind, output = parts[1], parts[3], parts[4]
        if producer not in tasks:
            return [f"{name}: {reference} names no task"]
        outputs = templates[tasks[producer]["template"]].get("outputs", {}).get(kind, [])
        return [] if any(o["name"] == output for o in outputs) else [f"{name}: {producer} has no {kind} {output}"]
    return []


@dataclass
class DagRun:
    """What happened to each task: its phase, output parameters and artifact paths."""

    phases: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, dict[str, str]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Path]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One task to execute: its template, the file holding its inputs (`{{inputs.parameters}}`, as Argo writes
    a script's source), its artifacts (declared path -> the producer's file), the host directory its outputs
    go to (Argo's `/tmp/hera-outputs`), extra environment, and the workflow's volumes and service account."""

    name: str
    template: dict
    inputs_file: Path
    artifacts: dict[Path, Path]
    outputs: Path
    env: dict[str, str]
    volumes: list[dict]
    service_account: str


# Runs a step; returns its exit code and its logs.
Executor = Callable[[Step], tuple[int, str]]


def run_here(step: Step) -> tuple[int, str]:
    """A step as a process on this machine: artifacts copied to their declared paths (removed after), outputs
    written to the step's directory."""
    script = step.template["script"]
    env = {**os.environ, **{e["name"]: e["value"] for e in script.get("env", [])}, **step.env,
           "hera__outputs_directory": str(step.outputs)}
    for target, source in step.artifacts.items():
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target) if source.is_dir() else shutil.copy(source, target)
    try:
        finished = subprocess.run([sys.executable, *script["args"], str(step.inputs_file)], env=env,
                                  capture_output=True, text=True, timeout=600)
    finally:
        for path in step.artifacts:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return finished.returncode, finished.stdout + finished.stderr


def run_dag(workflow: dict, arguments: dict[str, str], work: Path, env: dict[str, str],
            executor: Executor = run_here, only: set[str] | None = None) -> DagRun:
    """Run the entrypoint DAG (`only`: these tasks; the others are Omitted), then the exit handler; returns every
    task's outcome."""
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    values = {p["name"]: p.get("value", "") for p in workflow["spec"]["arguments"]["parameters"]} | arguments
    values["__uid"] = str(uuid.uuid4())  # as Argo gives each workflow
    run = DagRun()
    context = _Context(templates, run, work, env, executor, workflow["spec"])
    _run_tasks(templates[workflow["spec"]["entrypoint"]], values, context, only)
    status = "Failed" if "Failed" in run.phases.values() else "Succeeded"
    if workflow["spec"].get("onExit"):
        _run_tasks(templates[workflow["spec"]["onExit"]], values | {"__status": status}, context, None)
    return run


@dataclass(frozen=True)
class _Context:
    templates: dict
    run: DagRun
    work: Path
    env: dict
    executor: Executor
    spec: dict


def _run_tasks(dag_template: dict, values: dict, context: _Context, only: set[str] | None) -> None:
    run = context.run
    pending = list(dag_template["dag"]["tasks"])
    while pending:
        task = next(t for t in pending if _ready(t, run))
        pending.remove(task)
        if only is not None and task["name"] not in only:
            run.phases[task["name"]] = "Omitted"
        elif not _depends_hold(task, run) or not _when_holds(task, values, run):
            run.phases[task["name"]] = "Skipped" if _depends_hold(task, run) else "Omitted"
        else:
            _run_task(task, values, context)


def _ready(task: dict, run: DagRun) -> bool:
    return all(dep in run.phases for dep in _dependencies(task))


def _dependencies(task: dict) -> list[str]:
    return [part.split(".")[0] for part in re.split(r"\s*(?:&&|\|\|)\s*", task.get("depends", "")) if part]


def _depends_hold(task: dict, run: DagRun) -> bool:
    for part in re.split(r"\s*&&\s*", task.get("depends", "")):
        if not part:
            continue
        dependency, _, state = part.partition(".")
        allowed = {state} if state else {"Succeeded", "Skipped"}
        if run.phases[dependency] not in allowed:
            return False
    return True


def _when_holds(task: dict, values: dict, run: DagRun) -> bool:
    if "when" not in task:
        return True
    left, operator, right = re.split(r"\s*(==|!=)\s*", _resolve(task["when"], values, run))
    return (left.strip() == right.strip()) == (operator == "==")


def _resolve(text: str, values: dict, run: DagRun) -> str:
    def value(match: re.Match) -> str:
        parts = match.group(1).split(".")
        if parts[:2] == ["workflow", "status"]:
            return values["__status"]
        if parts[:2] == ["workflow", "uid"]:
            return values["__uid"]
        if parts[0] == "workflow":
            return values[parts[2]]
        return run.parameters[parts[1]][parts[4]]

    return _REFERENCE.sub(value, text)


def _run_task(task: dict, values: dict, context: _Context) -> None:
    name, run, template = task["name"], context.run, context.templates[task["template"]]
    outputs = context.work / name
    outputs.mkdir(parents=True, exist_ok=True)
    given = {p["name"]: _resolve(str(p["value"]), values, run) for p in task.get("arguments", {}).get("parameters", [])}
    inputs = {p["name"]: p["default"] for p in template.get("inputs", {}).get("parameters", []) if "default" in p}
    inputs_file = outputs / "inputs.json"
    inputs_file.write_text(json.dumps([{"name": k, "value": v} for k, v in (inputs | given).items()]))
    volumes = json.loads(_resolve(json.dumps(context.spec.get("volumes", [])), values, run))
    step = Step(name, template, inputs_file, _artifacts(task, template, run), outputs, context.env, volumes,
                context.spec.get("serviceAccountName", ""))
    code, logs = context.executor(step)
    run.logs[name] = logs
    run.phases[name] = "Succeeded" if code == 0 else "Failed"
    run.parameters[name] = {p.name: p.read_text() for p in (outputs / "parameters").glob("*")} \
        if (outputs / "parameters").is_dir() else {}
    run.artifacts[name] = {p.name: p for p in (outputs / "artifacts").glob("*")} \
        if (outputs / "artifacts").is_dir() else {}


def _artifacts(task: dict, template: dict, run: DagRun) -> dict[Path, Path]:
    """Each artifact argument: the path its template declares -> the file or directory its producer wrote."""
    declared = {a["name"]: Path(a["path"]) for a in template.get("inputs", {}).get("artifacts", [])}
    placed = {}
    for artifact in task.get("arguments", {}).get("artifacts", []):
        producer, _, _, output = artifact["from"].strip("{} ").split(".")[1:5]
        placed[declared[artifact["name"]]] = run.artifacts[producer][output]
    return placed
