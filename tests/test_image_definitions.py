"""What the runtime images are built from and deployed with, checked without a container engine: their locks
(runtime_images/locks, `make lock`) hold requirements.lock's versions, nest as the Dockerfile's layers do, carry
no test or dev tool and every package the code they run imports; each ServingRuntime is strictly valid and runs
its framework's image."""

from __future__ import annotations

import ast
import importlib.metadata
import itertools
import re
import sys
from pathlib import Path

import pytest
import yaml

from components import __version__
from pipelines.compile import REPO_ROOT
from tests.conftest import shared_path
from tests.support.schemas import kube_object_errors

LOCKS = REPO_ROOT / "runtime_images" / "locks"
NESTED = ("model-server-sklearn", "model-server-tensorflow", "steps")  # each image's layers are the last one's
DEV_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "ruff", "mypy", "moto", "ipykernel", "ipython", "jedi",
             "debugpy", "nbclient", "nbformat", "jupyter-client", "kubernetes-validate", "cel-python",
             "tritonclient", "types-pyyaml", "cfn-lint", "flask", "docker"}
TENSORFLOW = {"tensorflow-cpu", "keras", "tensorflow-serving-api"}


def normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line."""
    return {normalized(name): version
            for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", path.read_text(), re.M)}


def lock(image: str) -> dict[str, str]:
    """An image's lock."""
    return pins(LOCKS / f"{image}.lock")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (heavy imports sit inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def module_file(module: str) -> Path | None:
    """The source file of one of meshserve's own modules."""
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(files: list[Path], follow: bool) -> set[str]:
    """The distributions `files` import (stdlib and meshserve's own left out); with `follow`, also what the
    meshserve modules they import import, transitively."""
    seen: set[Path] = set()
    pending = list(files)
    top_levels: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in ("components", "pipelines"):
                own = module_file(module) if follow else None
                pending += [own] if own else []
            elif top not in sys.stdlib_module_names and top != "_typeshed":
                top_levels.add(top)
    providers = importlib.metadata.packages_distributions()
    missing = sorted(top for top in top_levels if top not in providers)
    assert missing == [], f"no installed distribution provides {missing}"
    return {normalized(dist) for top in top_levels for dist in providers[top]}


def test_every_image_lock_pins_the_versions_the_tests_ran_with():
    tested = pins(REPO_ROOT / "requirements.lock")
    for image in NESTED:
        differing = {name: (version, tested.get(name)) for name, version in lock(image).items()
                     if tested.get(name) != version}
        assert differing == {}, image


@pytest.mark.parametrize("smaller, larger", itertools.pairwise(NESTED))
def test_the_locks_nest_as_the_images_layers_do(smaller, larger):
    assert lock(smaller).items() <= lock(larger).items()


def test_no_image_holds_a_test_or_dev_tool_and_the_sklearn_server_no_tensorflow():
    for image in NESTED:
        assert DEV_TOOLS.isdisjoint(lock(image)), image
    assert TENSORFLOW.isdisjoint(lock("model-server-sklearn"))
    assert {"tensorflow-cpu", "keras"} <= set(lock("model-server-tensorflow"))


def test_the_steps_image_holds_every_package_meshserve_imports():
    code = [*REPO_ROOT.glob("components/**/*.py"), *REPO_ROOT.glob("pipelines/**/*.py")]
    needed = third_party_imports(code, follow=False)
    assert needed - set(lock("steps")) == set()


def test_the_model_servers_hold_what_the_server_imports_and_only_tensorflow_s_needs_tensorflow():
    needed = third_party_imports(sorted((REPO_ROOT / "components" / "serving").glob("*.py")), follow=True)
    assert {"kserve", "scikit-learn", "tensorflow-cpu"} <= needed
    assert needed - set(lock("model-server-tensorflow")) == set()
    assert needed - TENSORFLOW - set(lock("model-server-sklearn")) == set()


@pytest.mark.parametrize("framework", ["sklearn", "tensorflow"])
def test_each_serving_runtime_is_strictly_valid_and_runs_its_framework_s_image(framework):
    runtime = yaml.safe_load((REPO_ROOT / "manifests" / "runtimes" / f"meshserve-{framework}.yaml").read_text())
    assert kube_object_errors(shared_path("schemas"), runtime) == []
    assert [form["name"] for form in runtime["spec"]["supportedModelFormats"]] == [framework]
    container = runtime["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/meshserve/model-server-{framework}:{__version__}"
    assert container["args"][:3] == ["/mnt/models", "--name", "{{.Name}}"] and "0.0.0.0" in container["args"]
    kustomization = yaml.safe_load((REPO_ROOT / "manifests" / "runtimes" / "kustomization.yaml").read_text())
    assert f"meshserve-{framework}.yaml" in kustomization["resources"]
