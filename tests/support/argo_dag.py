"""Argo's linter checks, and a DAG runner for a compiled WorkflowTemplate's Python steps (Hera's runner).

`lint` finds what `argo lint` would: a task naming a template that does not exist, a `depends` on an
unknown task, a reference to an output a task's template does not declare, a volume mount with no
volume, a required input with no argument. `run_dag` executes a DAG as Argo does for script
templates: in dependency order, `when` evaluated, `depends` with Argo's meaning (`X` = X succeeded or
was skipped; `X.Succeeded` = X succeeded), each step run by its own command line through Hera's runner,
artifacts placed at the declared input paths, then the exit handler with `{{workflow.status}}`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
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


def run_dag(workflow: dict, arguments: dict[str, str], work: Path, env: dict[str, str]) -> DagRun:
    """Run the entrypoint DAG, then the exit handler; returns every task's outcome."""
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    values = {p["name"]: p.get("value", "") for p in workflow["spec"]["arguments"]["parameters"]} | arguments
    values["__uid"] = str(uuid.uuid4())  # as Argo gives each workflow
    run = DagRun()
    _run_tasks(templates[workflow["spec"]["entrypoint"]], templates, values, run, work, env)
    status = "Failed" if "Failed" in run.phases.values() else "Succeeded"
    if workflow["spec"].get("onExit"):
        _run_tasks(templates[workflow["spec"]["onExit"]], templates, values | {"__status": status}, run, work, env)
    return run


def _run_tasks(dag_template: dict, templates: dict, values: dict, run: DagRun, work: Path, env: dict) -> None:
    pending = list(dag_template["dag"]["tasks"])
    while pending:
        task = next(t for t in pending if _ready(t, run))
        pending.remove(task)
        if not _depends_hold(task, run) or not _when_holds(task, values, run):
            run.phases[task["name"]] = "Skipped" if _depends_hold(task, run) else "Omitted"
            continue
        _run_task(task, templates[task["template"]], values, run, work, env)


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


def _run_task(task: dict, template: dict, values: dict, run: DagRun, work: Path, env: dict) -> None:
    name = task["name"]
    outputs = work / name
    outputs.mkdir(parents=True, exist_ok=True)
    given = {p["name"]: _resolve(str(p["value"]), values, run) for p in task.get("arguments", {}).get("parameters", [])}
    inputs = {p["name"]: p["default"] for p in template.get("inputs", {}).get("parameters", []) if "default" in p}
    placed = _place_artifacts(task, template, run)
    args_file = outputs / "inputs.json"
    args_file.write_text(json.dumps([{"name": k, "value": v} for k, v in (inputs | given).items()]))
    script = template["script"]
    command = [sys.executable, *script["args"], str(args_file)]
    process_env = {**os.environ, **{e["name"]: e["value"] for e in script.get("env", [])}, **env,
                   "hera__outputs_directory": str(outputs)}
    try:
        finished = subprocess.run(command, env=process_env, capture_output=True, text=True, timeout=600)
    finally:
        for path in placed:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    run.logs[name] = finished.stdout + finished.stderr
    run.phases[name] = "Succeeded" if finished.returncode == 0 else "Failed"
    run.parameters[name] = {p.name: p.read_text() for p in (outputs / "parameters").glob("*")} \
        if (outputs / "parameters").is_dir() else {}
    run.artifacts[name] = {p.name: p for p in (outputs / "artifacts").glob("*")} \
        if (outputs / "artifacts").is_dir() else {}


def _place_artifacts(task: dict, template: dict, run: DagRun) -> list[Path]:
    """Copy each artifact argument to the path its template declares, as Argo does; returns those paths."""
    declared = {a["name"]: Path(a["path"]) for a in template.get("inputs", {}).get("artifacts", [])}
    placed = []
    for artifact in task.get("arguments", {}).get("artifacts", []):
        producer, _, _, output = artifact["from"].strip("{} ").split(".")[1:5]
        source, target = run.artifacts[producer][output], declared[artifact["name"]]
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target) if source.is_dir() else shutil.copy(source, target)
        placed.append(target)
    return placed
