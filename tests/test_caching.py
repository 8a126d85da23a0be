"""No task with a side effect or a measurement is cached in the compiled KFP YAML: a KFP server would replay
an earlier run's outputs (a PROMOTE without deploying or measuring anything). Train and upload may be cached:
their outputs are content-addressed. The Argo templates memoize nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CACHEABLE = {"train", "upload"}
KFP_FILES = sorted([*ROOT.glob("pipelines/compiled/*.kfp.yaml"), *ROOT.glob("components/steps/*/*component*.yaml")])


def cached_tasks(path: Path) -> list[str]:
    """Every task (in the root DAG and in every sub-DAG, the exit handler's included) whose caching is on."""
    found = []
    for document in yaml.safe_load_all(path.read_text()):
        if not document or "root" not in document:
            continue
        dags = [document["root"].get("dag", {})]
        dags += [component.get("dag", {}) for component in document.get("components", {}).values()]
        found += [name for dag in dags for name, task in dag.get("tasks", {}).items()
                  if task.get("cachingOptions", {}).get("enableCache")]
    return found


@pytest.mark.parametrize("path", KFP_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_only_content_addressed_steps_are_cached(path):
    assert set(cached_tasks(path)) <= CACHEABLE


def test_the_train_to_serve_pipeline_still_caches_train_and_upload():
    assert set(cached_tasks(ROOT / "pipelines/compiled/train_to_serve.kfp.yaml")) == CACHEABLE


def test_argo_templates_memoize_nothing():
    for path in ROOT.glob("pipelines/compiled/*.argo.yaml"):
        assert "memoize" not in path.read_text(), path
