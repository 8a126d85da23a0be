"""KServe's ModelServer (REST v1/v2, gRPC v2, health, /metrics), lean per request and on loopback by default.

Two changes to how KServe's ModelServer runs, neither to its endpoints, protocols or errors:
- KServe binds every interface (0.0.0.0 for REST, [::] for gRPC) with no option to change it; a local
  platform must not expose models to the network, so this server binds the host it is given.
- KServe's REST server adds timing_asgi's TimingMiddleware to every app, which calls getrusage and
  logs a trace per request (18% of the server's CPU under load, measured with py-spy); the lean
  server leaves it out and runs on uvloop. Latency stays observable: the router logs each request's
  upstream time, the benchmark measures it, and /metrics keeps KServe's histograms.
One addition: a request body larger than `max_request_bytes` (default 8 MiB, as the limit a body is
held to before it is decoded on the event loop) is answered 413 without being read, so one client
cannot take the server's memory or stall its health probes with a huge body.
"""

from __future__ import annotations

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.rest.server import RESTServer

LOOPBACK = "127.0.0.1"
MAX_REQUEST_BYTES = 8 << 20


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, by its Content-Length or, when chunked, as it arrives."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        """Pass the request on unless its body is over the limit."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self._refuse(send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = f'{{"error": "request body over {self.limit} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    """A chunked body went over the limit."""


class LeanRESTServer(RESTServer):
    """KServe's REST server without the per-request timing middleware, on `host`, no access log."""

    def __init__(self, host: str, *args, max_request_bytes: int = MAX_REQUEST_BYTES, **kwargs):
        import logging

        self.max_request_bytes = max_request_bytes
        super().__init__(*args, **kwargs)
        self.config.host = host
        # uvicorn logs access when its access logger has a handler, its parents' included (KServe's root).
        access = logging.getLogger("uvicorn.access")
        access.handlers, access.propagate = [], False

    def _add_middlewares(self, app) -> None:
        """Only the body limit: the timing middleware's getrusage and trace line cost more than the model."""
        app.add_middleware(BodyLimit, limit=self.max_request_bytes)


class _HostGRPCServer(GRPCServer):
    """KServe's gRPC server on a chosen host instead of [::]."""

    def __init__(self, host: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._host = host

    async def start(self, max_workers):
        """Bind host:port, then start as KServe does."""
        from concurrent import futures

        from grpc import aio
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
        from kserve.protocol.grpc.interceptors import LoggingInterceptor
        from kserve.protocol.grpc.servicer import InferenceServicer

        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        self._server = aio.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                                  interceptors=(LoggingInterceptor(),))
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._server.add_insecure_port(f"{self._host}:{self._port}")
        await self._server.start()
        await self._server.wait_for_termination()


class LoopbackModelServer(ModelServer):
    """A single-process ModelServer whose REST and gRPC listeners bind `host` (default 127.0.0.1)."""

    def __init__(self, host: str = LOOPBACK, **kwargs):
        super().__init__(**kwargs)
        self.host = host

    def start(self, models) -> None:
        """Register the models, then serve REST and gRPC on the host, on `new_event_loop`'s loop, until stopped."""
        import asyncio

        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = self.rest_server()
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = _HostGRPCServer(self.host, self.grpc_port, self.dataplane,
                                                self.model_repository_extension, kwargs={},
                                                grace_period=self.grace_period)
            self.servers.append(self._grpc_server.start(self.max_threads))
        with asyncio.Runner(loop_factory=self.new_event_loop) as runner:
            self.setup_event_loop(runner.get_loop())
            self.register_signal_handler()
            runner.run(self._serve())

    @staticmethod
    def new_event_loop():
        """uvloop's event loop (libuv): less CPU per request than asyncio's."""
        import uvloop

        return uvloop.new_event_loop()

    def rest_server(self) -> RESTServer:
        """The REST server this model server runs: KServe's, lean, on the host."""
        return LeanRESTServer(self.host, FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension,
                              self.http_port, grace_period=self.grace_period,
                              timeout_keep_alive=self.timeout_keep_alive)

    def setup_event_loop(self, loop=None) -> None:
        """KServe's loop settings (exception handler, executor) applied to the loop that serves.

        KServe's own version configures `asyncio.get_event_loop()`, which is not the loop `asyncio.run`
        then creates.
        """
        import asyncio
        import concurrent.futures

        loop = loop or asyncio.get_event_loop()
        loop.set_exception_handler(self._custom_exception_handler or self.default_exception_handler)
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=self.max_asyncio_workers or 4))


def serve(model_dir, name: str, http_port: int = 8080, grpc_port: int = 8081, host: str = LOOPBACK) -> None:
    """Load the model directory and serve it in the foreground until SIGTERM/SIGINT."""
    import logging
    import warnings

    from components.serving.models import model_for

    model = model_for(name, model_dir)
    model.load()
    server = LoopbackModelServer(host=host, http_port=http_port, grpc_port=grpc_port, enable_docs_url=False,
                                 enable_latency_logging=False)
    # Per request, KServe logs two latency traces and FastAPI warns that KServe's ORJSONResponse is
    # deprecated. Keep warnings and errors. After the constructor: it sets up logging.
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    server.start([model])
