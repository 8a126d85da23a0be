"""KServe's ModelServer (REST v1/v2, gRPC v2, health, /metrics), listening on loopback only.

KServe binds every interface (0.0.0.0 for REST, [::] for gRPC) with no option to change it; a local
platform must not expose models to the network, so this server binds the host it is given.
"""

from __future__ import annotations

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.rest.server import RESTServer

LOOPBACK = "127.0.0.1"


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
        """Register the models, then serve REST and gRPC on the host until stopped."""
        import asyncio

        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = RESTServer(FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension,
                                       self.http_port, access_log_format=self.access_log_format,
                                       grace_period=self.grace_period, event_loop=self.event_loop,
                                       timeout_keep_alive=self.timeout_keep_alive)
        self._rest_server.config.host = self.host
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = _HostGRPCServer(self.host, self.grpc_port, self.dataplane,
                                                self.model_repository_extension, kwargs={},
                                                grace_period=self.grace_period)
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())


def serve(model_dir, name: str, http_port: int = 8080, grpc_port: int = 8081, host: str = LOOPBACK) -> None:
    """Load the model directory and serve it in the foreground until SIGTERM/SIGINT."""
    import logging
    import warnings

    from components.serving.models import model_for

    model = model_for(name, model_dir)
    model.load()
    server = LoopbackModelServer(host=host, http_port=http_port, grpc_port=grpc_port, enable_docs_url=False,
                                 enable_latency_logging=False)
    # Per request, KServe logs an access line and two latency traces and FastAPI warns that KServe's
    # ORJSONResponse is deprecated: 3+ lines per request on the server's one event loop (measured at
    # 500 qps: 5.5 MB of log per 10 s). Keep warnings and errors. After the constructor: it sets up logging.
    for noisy in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    server.start([model])
