"""KServe model classes for meshserve model directories (scikit-learn joblib, TensorFlow SavedModel).

KServe's own sklearn server is not on PyPI, so this is the small equivalent: load the model the
manifest describes, answer v1 `{"instances"}` and Open Inference Protocol v2 requests, refuse inputs
of the wrong shape with InvalidInput (HTTP 400 / gRPC INVALID_ARGUMENT).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import uuid
from pathlib import Path

import kserve
import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from components.errors import IntegrityError, InvalidInputError
from components.manifest import ModelManifest, read_manifest, verify_directory

OUTPUT_NAME = "output-0"
OFFLOAD_ROWS = 256  # above this, a request's conversion and prediction take milliseconds: off the event loop


def verified_bytes(model_dir: Path, manifest: ModelManifest, relative: str) -> bytes:
    """A model file's bytes, read once and checked against the manifest's sha256: what is loaded (and a pickle
    runs as it loads) is exactly what was trained and verified, even if the file changes after the check."""
    data = (Path(model_dir) / relative).read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.files.get(relative):
        raise IntegrityError("model", f"{relative} does not match the manifest's sha256", "re-publish the model")
    return data


def _rows_claimed(payload) -> int:
    """How many rows a request says it carries (before any conversion)."""
    if isinstance(payload, InferRequest):
        shape = payload.inputs[0].shape if payload.inputs else [0]
        return shape[0] if shape and isinstance(shape[0], int) else 0
    instances = payload.get("instances") if isinstance(payload, dict) else None
    return len(instances) if isinstance(instances, list) else 0


class ManifestModel(kserve.Model):
    """What both frameworks share: the manifest, metadata, input checks and response encoding."""

    input_dtype: type = np.float32

    def __init__(self, name: str, model_dir: Path):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.manifest: ModelManifest = read_manifest(self.model_dir)
        # A response id for requests that bring none: unique per process (a random prefix and a counter),
        # without a uuid4 (an os.urandom call) per request.
        prefix = uuid.uuid4().hex[:12]
        self._response_ids = (f"{prefix}-{n}" for n in itertools.count())

    def load(self) -> bool:
        """Verify the files against the manifest, then load the framework model."""
        verify_directory(self.model_dir, self.manifest)
        self._load_framework_model()
        self.ready = True
        return self.ready

    def _load_framework_model(self) -> None:
        raise NotImplementedError

    def _infer(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_input_types(self) -> list[dict]:
        """The input tensor, as the v2 model metadata endpoint reports it."""
        spec = self.manifest.input
        return [{"name": spec.name, "datatype": spec.datatype, "shape": spec.shape}]

    def get_output_types(self) -> list[dict]:
        """One INT64 class index per input row."""
        return [{"name": OUTPUT_NAME, "datatype": "INT64", "shape": [-1]}]

    async def predict(self, payload, headers=None, response_headers=None):
        """Class indices for a v1 or v2 request; an input that cannot be read as the model's is InvalidInput
        (HTTP 400, gRPC INVALID_ARGUMENT), never a server error. A request of more than OFFLOAD_ROWS rows is
        converted and predicted on a worker thread, so the event loop keeps answering health probes."""
        if _rows_claimed(payload) > OFFLOAD_ROWS:
            return await asyncio.to_thread(self._answer, payload)
        return self._answer(payload)

    def _answer(self, payload):
        features = self._features(payload)
        if isinstance(payload, InferRequest):
            classes = self._infer(features)
            output = InferOutput(name=OUTPUT_NAME, shape=list(classes.shape), datatype="INT64",
                                 data=classes.astype(np.int64))
            return InferResponse(model_name=self.name, infer_outputs=[output],
                                 response_id=payload.id or next(self._response_ids))
        return {"predictions": self._infer(features).tolist()}

    def _features(self, payload) -> np.ndarray:
        """The request's rows as an array of the model's input type."""
        try:
            if isinstance(payload, InferRequest):
                if len(payload.inputs) != 1:
                    raise InvalidInput(f"expected 1 input tensor, got {len(payload.inputs)}")
                if any(not isinstance(size, int) or size < 0 for size in payload.inputs[0].shape):
                    raise InvalidInput(f"input shape {payload.inputs[0].shape} has a negative or non-integer size")
                return self._checked(payload.inputs[0].as_numpy())
            instances = payload.get("instances") if isinstance(payload, dict) else None
            if not isinstance(instances, list):
                raise InvalidInput('expected a JSON object with an "instances" list')
            return self._checked(np.asarray(instances))
        except InvalidInput:
            raise
        except (ValueError, TypeError, IndexError, OverflowError) as exc:  # ragged, out of range, data != shape
            raise InvalidInput(f"the input cannot be read as {self.manifest.input.datatype} rows of "
                               f"{self.manifest.input.shape[1:]}: {str(exc).splitlines()[0][:200]}") from None

    def _checked(self, features: np.ndarray) -> np.ndarray:
        """Rows of the manifest's feature count, as the framework's float type; anything else is InvalidInput."""
        expected = self.manifest.input.shape[1:]
        if features.ndim != 1 + len(expected) or list(features.shape[1:]) != expected:
            raise InvalidInput(f"input shape {list(features.shape)} does not match {[-1, *expected]}")
        try:
            return features.astype(self.input_dtype, copy=False)
        except (TypeError, ValueError):
            raise InvalidInput("input values must be numbers") from None


class SklearnModel(ManifestModel):
    """A scikit-learn pipeline, predicting in float64 as `predict` does: from model.skops (skops' restricted
    loading: only the types it trusts are built) or model.joblib (a pickle: loading runs the code it holds, so
    the model's publisher must be trusted as much as this server's own code)."""

    input_dtype = np.float64

    def _load_framework_model(self) -> None:
        from components.serving.sklearn_predict import lean_predict

        if "model.skops" in self.manifest.files:
            import skops.io

            data = verified_bytes(self.model_dir, self.manifest, "model.skops")
            untrusted = skops.io.get_untrusted_types(data=data)
            if untrusted:
                raise IntegrityError("model",
                                     f"model.skops holds types skops does not trust: {', '.join(untrusted[:3])}",
                                     "serve it only from a publisher you trust, saved as joblib")
            pipeline = skops.io.loads(data)
        else:
            import joblib

            pipeline = joblib.load(io.BytesIO(verified_bytes(self.model_dir, self.manifest, "model.joblib")))
        self._predict = lean_predict(pipeline)

    def _infer(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(features))


class TensorflowModel(ManifestModel):
    """A TensorFlow SavedModel in TF Serving's layout (<dir>/<version>/saved_model.pb) or Triton's
    (<dir>/<version>/model.savedmodel/saved_model.pb)."""

    def _load_framework_model(self) -> None:
        import os

        # One thread per op pool unless set: a request of a few rows runs each op in microseconds, and
        # handing it to a pool of threads costs more CPU than the op (measured: 456 -> 262 us per call).
        # A model server runs a replica per core or two; TF_NUM_*_THREADS still set more for large models.
        for pool in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            os.environ.setdefault(pool, "1")
        import tensorflow as tf

        versions = sorted((p for p in self.model_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        latest = versions[-1] / "model.savedmodel" if (versions[-1] / "model.savedmodel").is_dir() else versions[-1]
        self._signature = tf.saved_model.load(str(latest)).signatures["serving_default"]
        self._tf = tf

    def _infer(self, features: np.ndarray) -> np.ndarray:
        outputs = self._signature(**{self.manifest.input.name: self._tf.constant(features)})
        return next(iter(outputs.values())).numpy().argmax(axis=1)


_MODEL_CLASSES = {"sklearn": SklearnModel, "tensorflow": TensorflowModel}


def model_for(name: str, model_dir: Path) -> ManifestModel:
    """The model class for the directory's framework; an unknown framework is an error."""
    framework = read_manifest(Path(model_dir)).framework
    if framework not in _MODEL_CLASSES:
        raise InvalidInputError("model", f"framework {framework!r} cannot be served",
                                f"serve one of {', '.join(_MODEL_CLASSES)}")
    _require_framework(framework)
    return _MODEL_CLASSES[framework](name, Path(model_dir))


def _require_framework(framework: str) -> None:
    """A model whose framework this installation lacks (the scikit-learn image has no TensorFlow) is refused
    before anything loads, naming the ServingRuntime that serves it. Each framework's module has its name."""
    import importlib.util

    if importlib.util.find_spec(framework) is None:
        raise InvalidInputError("model", f"a {framework} model, and this model server has no {framework}",
                                f"serve it with the meshserve-{framework} ServingRuntime "
                                f"(image model-server-{framework})")
