"""One runtime of the local model mesh: a KServe model server holding a subset of the mesh's models.

As a ModelMesh runtime pod does, it serves the model versions placed on it, and forwards a request for a
version it does not hold to a runtime that holds it: one more hop over loopback. Each version gets a
listener (a port) of its own on every runtime that takes its requests, since the router tells versions
apart by address: on a runtime holding the version the listener serves it from memory; on any other
(the mesh's `service` routing) it forwards. Requests name the model as clients do (`/v2/models/NAME/...`);
inside the runtime the version is registered as `NAME__VERSION`, as ModelMesh registers each
InferenceService under a model id of its own. Like ModelMesh's REST proxy, a v2 REST input may carry its
values as the gRPC message does (`"contents": {"fp32_contents": [...]}`, seed 000's payload) instead of `data`.

Every answer names the runtime that ran the model (`x-meshserve-runtime`), and a forwarded one also the
runtime that forwarded it (`x-meshserve-forwarded-by`), so a placement can be checked from outside.

The controller (components/serving/mesh.py) drives a runtime over HTTP on the runtime's own port:
`POST /meshserve/v1/hold {"name", "version", "model_dir", "port"}` loads, registers and listens;
`POST /meshserve/v1/forward {"name", "version", "port", "holders": [address]}` listens and forwards;
`POST /meshserve/v1/release {"port"}` stops listening (in-flight requests finish) and unloads;
`GET /meshserve/v1/listeners` lists them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import MeshserveError
from components.serving.model_server import LOOPBACK, BodyLimit, LeanRESTServer, LoopbackModelServer

if TYPE_CHECKING:
    import httpx
    import uvicorn

CONTROL_PATH = "/meshserve/v1/"
RUNTIME_HEADER = "x-meshserve-runtime"
FORWARDED_HEADER = "x-meshserve-forwarded-by"
_HOP_BY_HOP = {b"host", b"content-length", b"connection", b"keep-alive", b"transfer-encoding"}


def model_id(name: str, version: str) -> str:
    """The id a version is registered under inside a runtime."""
    return f"{name}__{version}"


@dataclass
class Listener:
    """A version's port on this runtime: served here (no holders) or forwarded to one of its holders."""

    name: str
    version: str
    port: int
    holders: tuple[str, ...] = ()
    server: uvicorn.Server | None = None
    turns: itertools.cycle = field(default_factory=lambda: itertools.cycle([0]))

    def description(self) -> dict:
        """The JSON form `GET /meshserve/v1/listeners` answers."""
        return {"name": self.name, "version": self.version, "port": self.port, "holders": list(self.holders)}


class MeshFront:
    """ASGI middleware in front of KServe's app: the control API on the runtime's own port, and each version's
    listener served here (its path addressed to the version's model id) or forwarded to a holder."""

    def __init__(self, app, runtime: MeshRuntimeServer):
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope, receive, send):
        """Route one request by the port it arrived on."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        listener = self.runtime.listeners.get((scope.get("server") or ("", 0))[1])
        if listener is None:
            if scope["path"].startswith(CONTROL_PATH):
                return await self.runtime.control(scope, receive, send)
            return await self.app(scope, receive, send)
        if listener.holders:
            return await self.runtime.forward(listener, scope, receive, send)
        scope, receive = _as_rest_proxy(_addressed(scope, listener), receive)
        return await self.app(scope, receive, _signed(send, self.runtime.label))


class MeshRESTServer(LeanRESTServer):
    """The lean REST server with the mesh's front (outermost: the body limit)."""

    def __init__(self, runtime: MeshRuntimeServer, *args, **kwargs):
        self.runtime = runtime
        super().__init__(*args, **kwargs)

    def _add_middlewares(self, app) -> None:
        app.add_middleware(MeshFront, runtime=self.runtime)
        app.add_middleware(BodyLimit, limit=self.max_request_bytes)


class MeshRuntimeServer(LoopbackModelServer):
    """A model server that starts with no model and is told which versions to hold or forward."""

    def __init__(self, label: str, **kwargs):
        super().__init__(**kwargs)
        self.label = label
        self.listeners: dict[int, Listener] = {}
        self._client: httpx.AsyncClient | None = None

    def rest_server(self):
        """KServe's REST server, lean, with the mesh's front."""
        from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING

        return MeshRESTServer(self, self.host, FASTAPI_APP_IMPORT_STRING, self.dataplane,
                              self.model_repository_extension, self.http_port, grace_period=self.grace_period,
                              timeout_keep_alive=self.timeout_keep_alive)

    async def control(self, scope, receive, send) -> None:
        """The controller's requests: hold, forward, release, listeners."""
        action = scope["path"][len(CONTROL_PATH):]
        try:
            request = json.loads(await _body(receive) or b"{}")
            if action == "listeners":
                answer: object = [listener.description() for listener in self.listeners.values()]
            elif action in ("hold", "forward", "release"):
                answer = await getattr(self, f"_{action}")(request)
            else:
                return await _respond(send, 404, {"error": f"no such action {action!r}"})
        except (MeshserveError, KeyError, ValueError, OSError) as exc:
            return await _respond(send, 400, {"error": f"{type(exc).__name__}: {exc}"})
        await _respond(send, 200, answer)

    async def _hold(self, request: dict) -> dict:
        from components.serving.models import model_for

        name, version = request["name"], request["version"]
        model = model_for(model_id(name, version), Path(request["model_dir"]))
        await asyncio.get_running_loop().run_in_executor(None, model.load)
        self.register_model(model)
        return await self._listen(Listener(name, version, int(request["port"])))

    async def _forward(self, request: dict) -> dict:
        holders = tuple(request["holders"])
        if not holders:
            raise ValueError("a forwarding listener needs at least one holder")
        listener = Listener(request["name"], request["version"], int(request["port"]), holders,
                            turns=itertools.cycle(range(len(holders))))
        return await self._listen(listener)

    async def _listen(self, listener: Listener) -> dict:
        import uvicorn
        from kserve.model_server import app

        config = uvicorn.Config(app, host=self.host, port=listener.port, log_config=None, access_log=False,
                                lifespan="off", timeout_graceful_shutdown=10,
                                timeout_keep_alive=self.timeout_keep_alive)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        self.listeners[listener.port] = listener
        try:
            await server.startup()
        except BaseException:
            del self.listeners[listener.port]
            raise
        if not server.started:
            del self.listeners[listener.port]
            raise OSError(f"port {listener.port} could not be bound")
        listener.server = server
        return listener.description()

    async def _release(self, request: dict) -> dict:
        listener = self.listeners.pop(int(request["port"]), None)
        if listener is None:
            return {"released": False}
        if listener.server is not None:
            await listener.server.shutdown()
        if not listener.holders:
            self.registered_models.unload(model_id(listener.name, listener.version))
        return {"released": True}

    async def forward(self, listener: Listener, scope, receive, send) -> None:
        """Send the request to the next holder's listener for the version; answer what it answers (502 when no
        holder answers)."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_keepalive_connections=64))
        holder = listener.holders[next(listener.turns)]
        path = scope["raw_path"].decode() if scope.get("raw_path") else scope["path"]
        query = f"?{scope['query_string'].decode()}" if scope.get("query_string") else ""
        headers = [(key, value) for key, value in scope["headers"] if key.lower() not in _HOP_BY_HOP]
        try:
            answer = await self._client.request(scope["method"], f"http://{holder}{path}{query}", headers=headers,
                                                content=await _body(receive))
        except httpx.HTTPError as exc:
            return await _respond(send, 502, {"error": f"{self.label} could not reach {holder}: {exc}"})
        kept = [(key.encode(), value.encode()) for key, value in answer.headers.items()
                if key.encode().lower() not in _HOP_BY_HOP]
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": kept + [(FORWARDED_HEADER.encode(), self.label.encode()),
                                       (b"content-length", str(len(answer.content)).encode())]})
        await send({"type": "http.response.body", "body": answer.content})


def _addressed(scope: dict, listener: Listener) -> dict:
    """The request with its model's name in the path replaced by the version's model id."""
    old, new = f"/models/{listener.name}", f"/models/{model_id(listener.name, listener.version)}"
    path = scope["path"]
    if old + "/" not in path and not path.endswith(old):
        return scope
    path = path.replace(old, new, 1)
    return {**scope, "path": path, "raw_path": path.encode()}


def _as_rest_proxy(scope: dict, receive) -> tuple[dict, object]:
    """An infer request as ModelMesh's REST proxy reads it: JSON whatever its content type says (unless it uses
    the binary extension's header), and inputs carrying gRPC-style `contents` turned into v2 REST's `data`."""
    if scope["method"] != "POST" or not scope["path"].endswith("/infer"):
        return scope, receive
    headers = [(key, value) for key, value in scope["headers"] if key.lower() != b"content-type"]
    if not any(key.lower() == b"inference-header-content-length" for key, _ in headers):
        scope = {**scope, "headers": headers + [(b"content-type", b"application/json")]}
    replayed = False

    async def converted():
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": _contents_to_data(await _body(receive)), "more_body": False}

    return scope, converted


def _contents_to_data(body: bytes) -> bytes:
    """Each input's `contents: {"<type>_contents": [...]}` moved to `data` (the body unchanged otherwise)."""
    if b'"contents"' not in body:
        return body
    try:
        request = json.loads(body)
        for item in request.get("inputs", []):
            contents = item.pop("contents", None)
            if isinstance(contents, dict) and "data" not in item and contents:
                item["data"] = next(iter(contents.values()))
    except (ValueError, AttributeError, TypeError):
        return body  # KServe answers a malformed request as it would have
    return json.dumps(request).encode()


def _signed(send, label: str):
    """`send` that names this runtime in the answer's headers."""

    async def signed(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (RUNTIME_HEADER.encode(), label.encode())]}
        await send(message)

    return signed


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send, status: int, answer: object) -> None:
    body = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve(label: str, http_port: int, grpc_port: int, host: str = LOOPBACK) -> None:
    """Serve no model until told to, in the foreground until SIGTERM/SIGINT."""
    import logging
    import warnings

    server = MeshRuntimeServer(label, host=host, http_port=http_port, grpc_port=grpc_port, enable_docs_url=False,
                               enable_latency_logging=False)
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    server.start([])
