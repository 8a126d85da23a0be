"""A real inference endpoint for load-generator tests: HTTP (KServe v1, Open Inference v2, TF Serving
REST) and gRPC (Open Inference v2 ModelInfer, TF Serving Predict), with a toy model and faults.

Run as `python -m tests.support.inference_server --http-port N --grpc-port M [--delay-ms D]`.
Behaviour by model name: `echo` answers at once (after D ms); `slow` sleeps 20 ms; `broken` answers
503; `garbage` answers 200 with a body that is not an inference response. Inputs must have 4
features per row, else 400 / INVALID_ARGUMENT, like a real server given the wrong shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json

FEATURES = 4
DELAY_S = 0.0  # --delay-ms: added to every inference, to play a slower candidate


def _rows_ok(shape: list[int]) -> bool:
    return len(shape) == 2 and shape[1] == FEATURES


async def _fault(model: str) -> tuple[int, bytes] | None:
    if DELAY_S:
        await asyncio.sleep(DELAY_S)
    if model == "slow":
        await asyncio.sleep(0.02)
    if model == "broken":
        return 503, b'{"error": "model unavailable"}'
    if model == "garbage":
        return 200, b"<html>not json</html>"
    return None


def build_http_app():
    """The aiohttp application serving the three REST protocols."""
    from aiohttp import web

    async def v1_predict(request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if fault := await _fault(model):
            return web.Response(status=fault[0], body=fault[1], content_type="application/json")
        instances = (await request.json()).get("instances", [])
        if not instances or any(len(row) != FEATURES for row in instances):
            return web.json_response({"error": f"expected rows of {FEATURES} features"}, status=400)
        return web.json_response({"predictions": [int(sum(row)) % 3 for row in instances]})

    async def v2_infer(request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if fault := await _fault(model):
            return web.Response(status=fault[0], body=fault[1], content_type="application/json")
        tensor = (await request.json())["inputs"][0]
        if not _rows_ok(tensor["shape"]):
            return web.json_response({"error": f"shape {tensor['shape']} is not [N, {FEATURES}]"}, status=400)
        rows = tensor["shape"][0]
        return web.json_response({"model_name": model, "outputs": [
            {"name": "output-0", "shape": [rows], "datatype": "INT64", "data": [1] * rows}]})

    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=b'{"ok": true}', content_type="application/json")

    async def routed(request: web.Request) -> web.Response:
        """Like a mesh route on the `model` header: 404 unless it names a model served here."""
        if request.headers.get("model") != "echo":
            return web.json_response({"error": "no route"}, status=404)
        return web.json_response({"predictions": [1]})

    app = web.Application()
    app.router.add_post("/v1/models/{model}:predict", v1_predict)
    app.router.add_post("/v2/models/{model}/infer", v2_infer)
    app.router.add_get("/", plain)
    app.router.add_post("/routed", routed)
    return app


def build_grpc_server(port: int):
    """A grpc.aio server with the Open Inference v2 and TF Serving Predict services."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as v2
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as v2_grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Inference(v2_grpc.GRPCInferenceServiceServicer):
        async def ModelInfer(self, request, context):  # noqa: N802
            fault = await _fault(request.model_name)
            if fault and fault[0] == 503:
                await context.abort(grpc.StatusCode.INTERNAL, "model unavailable")
            if not _rows_ok(list(request.inputs[0].shape)):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "wrong shape")
            rows = request.inputs[0].shape[0]
            out = v2.ModelInferResponse.InferOutputTensor(name="output-0", datatype="INT64", shape=[rows])
            out.contents.int64_contents.extend([1] * rows)
            return v2.ModelInferResponse(model_name=request.model_name, outputs=[out])

    class Predict(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):  # noqa: N802
            dims = [d.size for d in next(iter(request.inputs.values())).tensor_shape.dim]
            if not _rows_ok(dims):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "wrong shape")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = request.model_spec.name
            response.outputs["output_0"].float_val.extend([0.5] * dims[0])
            return response

    server = grpc.aio.server()
    v2_grpc.add_GRPCInferenceServiceServicer_to_server(Inference(), server)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Predict(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    return server


async def serve(http_port: int, grpc_port: int | None) -> None:
    """Serve until killed."""
    from aiohttp import web

    runner = web.AppRunner(build_http_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    if grpc_port:
        server = build_grpc_server(grpc_port)
        await server.start()
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    global DELAY_S
    DELAY_S = args.delay_ms / 1000
    asyncio.run(serve(args.http_port, args.grpc_port))


if __name__ == "__main__":
    main()
