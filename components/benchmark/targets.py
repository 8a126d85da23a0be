"""Targets: turn settings into one request, encoded once and sent many times.

REST protocols get a method, URL, headers and body; gRPC protocols get a target address, a full
method name and the serialized request message. A base URL (no path) for a REST protocol is
completed with the protocol's standard path for the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from components.benchmark.settings import GRPC_PROTOCOLS, BenchSettings
from components.errors import InvalidInputError
from components.redaction import public_url

REST_PATHS = {
    "kserve-v1": "/v1/models/{model}:predict",
    "v2-rest": "/v2/models/{model}/infer",
    "tfserving-rest": "/v1/models/{model}:predict",
}
GRPC_METHODS = {
    "v2-grpc": "/inference.GRPCInferenceService/ModelInfer",
    "tfserving-grpc": "/tensorflow.serving.PredictionService/Predict",
}
# A cheap check that a 2xx answer is really an inference response: the key it must contain.
RESPONSE_MARKERS = {"kserve-v1": b'"predictions"', "v2-rest": b'"outputs"', "tfserving-rest": b'"predictions"'}


@dataclass(frozen=True)
class RequestSpec:
    """One request, ready to send: everything a protocol client needs, already encoded."""

    protocol: str
    address: str
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    response_marker: bytes | None = None

    @property
    def is_grpc(self) -> bool:
        """True for gRPC protocols (address is host:port, method a full gRPC method name)."""
        return self.protocol in GRPC_PROTOCOLS


def build_request(settings: BenchSettings) -> RequestSpec:
    """The request a run sends, from its settings (payload already built or read)."""
    if settings.protocol in GRPC_PROTOCOLS:
        return RequestSpec(settings.protocol, grpc_address(settings.url), GRPC_METHODS[settings.protocol],
                           settings.headers, settings.payload)
    url = rest_url(settings.url, settings.protocol, settings.model)
    method = settings.method or ("POST" if settings.payload else "GET")
    headers = settings.headers
    if settings.payload and not any(name.lower() == "content-type" for name, _ in headers):
        headers = headers + (("Content-Type", "application/json"),)
    return RequestSpec(settings.protocol, url, method, headers, settings.payload,
                       RESPONSE_MARKERS.get(settings.protocol))


def rest_url(url: str, protocol: str, model: str) -> str:
    """The full URL: as given, or the base URL plus the protocol's path for the model."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("url", f"{public_url(url)!r} is not an http(s) URL", "pass e.g. http://127.0.0.1:8080")
    if parts.path in ("", "/") and protocol in REST_PATHS:
        return url.rstrip("/") + REST_PATHS[protocol].format(model=model)
    return url


def grpc_address(url: str) -> str:
    """host:port from 'host:port' or 'grpc://host:port'."""
    address = url.removeprefix("grpc://")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in address:
        raise InvalidInputError("url", f"{public_url(url)!r} is not a gRPC address",
                                "pass host:port, e.g. 127.0.0.1:8081")
    return address


def rest_payload(protocol: str, input_name: str, shape: list[int], datatype: str, values: list) -> bytes:
    """A JSON inference request of the protocol's shape for one batch of values."""
    if protocol == "v2-rest":
        body = {"inputs": [{"name": input_name, "shape": shape, "datatype": datatype, "data": values}]}
    else:  # KServe v1 and TF Serving REST share the row format
        body = {"instances": _nest(values, shape)}
    return json.dumps(body, separators=(",", ":")).encode()


def grpc_payload(protocol: str, model: str, input_name: str, shape: list[int], datatype: str, values: list) -> bytes:
    """A serialized ModelInfer (v2) or Predict (TF Serving) request for one batch of values."""
    if protocol == "v2-grpc":
        from components.compat import import_kserve

        pb = import_kserve("kserve.protocol.grpc.grpc_predict_v2_pb2")

        tensor = pb.ModelInferRequest.InferInputTensor(name=input_name, datatype=datatype, shape=shape)
        _fill_v2_contents(tensor.contents, datatype, values)
        return pb.ModelInferRequest(model_name=model, inputs=[tensor]).SerializeToString()
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    array = np.asarray(values, dtype=np.float32 if datatype == "FP32" else np.int64).reshape(shape)
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(array))
    return request.SerializeToString()


def _fill_v2_contents(contents, datatype: str, values: list) -> None:
    fields = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents", "INT64": "int64_contents"}
    if datatype not in fields:
        raise InvalidInputError("datatype", f"unsupported datatype {datatype}", f"use one of {', '.join(fields)}")
    getattr(contents, fields[datatype]).extend(values)


def _nest(values: list, shape: list[int]) -> list:
    """Flat values → nested lists of `shape` (row-major)."""
    if len(shape) <= 1:
        return list(values)
    step = len(values) // shape[0]
    return [_nest(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]
