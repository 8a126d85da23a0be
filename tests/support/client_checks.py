"""Real inference clients against a running model server; run as a subprocess, one client kind each
(tritonclient's and kserve's protobufs both define `inference.*` and cannot share one process).

`python -m tests.support.client_checks triton|kserve HTTP_PORT GRPC_PORT MODEL N_FEATURES` prints the
predicted classes it got from each transport as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np


def triton(http_port: int, grpc_port: int, model: str, features: int) -> dict:
    """tritonclient HTTP and gRPC: server live/ready, model ready, metadata, infer."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    batch = np.zeros((2, features), dtype=np.float32)
    results = {}
    for kind, module, url in (("http", httpclient, f"127.0.0.1:{http_port}"),
                              ("grpc", grpcclient, f"127.0.0.1:{grpc_port}")):
        client = module.InferenceServerClient(url=url)
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
        metadata = client.get_model_metadata(model)
        inputs_meta = metadata["inputs"] if isinstance(metadata, dict) else [
            {"name": i.name, "datatype": i.datatype} for i in metadata.inputs]
        tensor = module.InferInput(inputs_meta[0]["name"], list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        response = client.infer(model, [tensor])
        results[kind] = response.as_numpy("output-0").tolist()
    return results


def kserve_clients(http_port: int, grpc_port: int, model: str, features: int) -> dict:
    """kserve's own InferenceRESTClient (v1 and v2) and InferenceGRPCClient."""
    from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest
    from kserve.inference_client import RESTConfig

    async def run() -> dict:
        rows = [[0.0] * features, [0.0] * features]
        results = {}
        v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
        response = await v1.infer(f"http://127.0.0.1:{http_port}", {"instances": rows}, model_name=model)
        results["rest_v1"] = response["predictions"]
        tensor = InferInput(name="input-0", shape=[2, features], datatype="FP32")
        tensor.set_data_from_numpy(np.zeros((2, features), dtype=np.float32))
        request = InferRequest(model_name=model, infer_inputs=[tensor])
        v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
        results["rest_v2"] = (await v2.infer(f"http://127.0.0.1:{http_port}", request,
                                             model_name=model)).outputs[0].as_numpy().tolist()
        grpc_client = InferenceGRPCClient(f"127.0.0.1:{grpc_port}")
        results["grpc_v2"] = (await grpc_client.infer(request)).outputs[0].as_numpy().tolist()
        return results

    return asyncio.run(run())


if __name__ == "__main__":
    kind, http_port, grpc_port, model, features = sys.argv[1:6]
    sys.argv = sys.argv[:1]  # kserve parses argv when imported
    check = triton if kind == "triton" else kserve_clients
    print(json.dumps(check(int(http_port), int(grpc_port), model, int(features))))
