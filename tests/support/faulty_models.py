"""Real candidates that misbehave as production models do: one that fails a share of its requests, one that
is slower. Each wraps a trained digits pipeline and is published as a model directory (joblib: the model server
imports this module, so the tests put the repository on the servers' PYTHONPATH)."""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path

import joblib


class FlakyClassifier:
    """Fails every `every`-th predict call (5% at 20): the model server answers those requests 500."""

    def __init__(self, inner, every: int = 20):
        self.inner = inner
        self.every = every
        self.calls = itertools.count(1)

    def predict(self, rows):
        """The inner model's answer, or an error on every `every`-th call."""
        if next(self.calls) % self.every == 0:
            raise RuntimeError("injected model failure")
        return self.inner.predict(rows)

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.calls = itertools.count(1)

    def __getstate__(self):
        return {"inner": self.inner, "every": self.every}


class SlowClassifier:
    """Spends `delay_s` more on every predict call."""

    def __init__(self, inner, delay_s: float):
        self.inner = inner
        self.delay_s = delay_s

    def predict(self, rows):
        """The inner model's answer, later."""
        time.sleep(self.delay_s)
        return self.inner.predict(rows)


def publish_wrapped(trained_dir: Path, out_dir: Path, wrap, to: str = "pvc://models/digits") -> str:
    """Wrap the trained model directory's pipeline with `wrap`, write it as a model directory with its manifest,
    publish it; return its storage URI."""
    from components.manifest import digest_directory, read_manifest, write_manifest
    from components.storage import upload_model

    manifest = read_manifest(trained_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(wrap(joblib.load(trained_dir / "model.joblib")), out_dir / "model.joblib")
    write_manifest(out_dir, dataclasses.replace(manifest, files=digest_directory(out_dir)))
    return upload_model(out_dir, to).storage_uri
