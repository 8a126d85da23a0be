"""The local serving path: model-server CPU per request, and seed 002's load through the router.

1. CPU per request, measured from /proc while the project's load generator sends `--requests`
   requests of 2 iris rows at 4 in flight (closed loop), for each protocol (KServe v1 REST, v2 REST,
   v2 gRPC) and each model: the sklearn pipeline (MinMaxScaler + SVC), the TensorFlow MLP, and a model
   that answers a constant without looking at the input (the server's own floor). Two servers, started
   the same way in the same run:
   - `stock`: KServe's ModelServer as it comes (its REST server with the timing middleware, asyncio),
     with the model calling `Pipeline.predict` on float32 rows: meshserve's model server before issue 12;
   - `lean`: meshserve's model server (`python -m components.serving`).
   The model's share is its CPU per request minus the constant model's, on the same server and protocol.
2. Seed 002's table (sklearn-iris, v1 REST through the router with a Host header, 500 qps for
   `--seconds`, 100% success expected), `--runs` times, on the local platform with `--replicas`.
3. The highest rate with p99 <= 10 ms through the router: rates climb by `--step` qps, 10 s each,
   until p99 passes 10 ms or a request fails.

Run: `.venv/bin/python tests/bench/bench_serving.py [--requests 6000] [--runs 3] [--seconds 60]`
(`make bench` runs it). Loads are bounded in count and time and target 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
PROTOCOLS = ("kserve-v1", "v2-rest", "v2-grpc")
SEED_002 = {"p50": 1.378, "p90": 1.588, "p95": 1.746, "p99": 2.99, "max": 18.873}


# --- the servers under test (run in their own processes: `bench_serving.py --serve ...`) ---------------

def serve(variant: str, model_dir: str, name: str, http_port: int, grpc_port: int) -> None:
    """Serve one model the `variant` way until SIGTERM."""
    import logging

    from components.compat import import_kserve

    model_server = import_kserve("components.serving.model_server")
    model = constant_model(name) if model_dir == "constant" else \
        (stock_model if variant == "stock" else import_kserve("components.serving.models").model_for)(name,
                                                                                                        model_dir)
    model.load()
    server_class = StockModelServer() if variant == "stock" else model_server.LoopbackModelServer
    server = server_class(http_port=http_port, grpc_port=grpc_port, enable_docs_url=False,
                          enable_latency_logging=False)
    for noisy in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server.start([model])


def StockModelServer():  # noqa: N802 (a class built on demand: kserve is imported only in the server process)
    """meshserve's ModelServer with KServe's own REST server (timing middleware) on asyncio's loop."""
    import asyncio

    from components.compat import import_kserve

    model_server = import_kserve("components.serving.model_server")
    rest = import_kserve("kserve.protocol.rest.server")

    class Stock(model_server.LoopbackModelServer):
        new_event_loop = staticmethod(asyncio.new_event_loop)

        def rest_server(self):
            server = rest.RESTServer(model_server.FASTAPI_APP_IMPORT_STRING, self.dataplane,
                                     self.model_repository_extension, self.http_port,
                                     grace_period=self.grace_period, timeout_keep_alive=self.timeout_keep_alive)
            server.config.host = self.host
            return server

    return Stock


def stock_model(name: str, model_dir: str):
    """The model class before issue 12: float32 rows through `Pipeline.predict` (TensorFlow unchanged)."""
    import numpy as np

    from components.compat import import_kserve

    models = import_kserve("components.serving.models")
    model = models.model_for(name, Path(model_dir))
    if not isinstance(model, models.SklearnModel):
        return model

    class StockSklearn(models.SklearnModel):
        input_dtype = np.float32

        def _load_framework_model(self) -> None:
            import joblib

            self._predict = joblib.load(self.model_dir / "model.joblib").predict

    return StockSklearn(name, Path(model_dir))


def constant_model(name: str):
    """A model that answers class 0 per row without reading the input: the server's per-request floor."""
    import numpy as np

    from components.compat import import_kserve

    kserve = import_kserve()
    infer_type = import_kserve("kserve.protocol.infer_type")

    class Constant(kserve.Model):
        def load(self) -> bool:
            self.ready = True
            return True

        def predict(self, payload, headers=None, response_headers=None):
            if isinstance(payload, infer_type.InferRequest):
                output = infer_type.InferOutput(name="output-0", shape=[2], datatype="INT64",
                                                data=np.zeros(2, dtype=np.int64))
                return infer_type.InferResponse(model_name=self.name, infer_outputs=[output], response_id="0")
            return {"predictions": [0, 0]}

    return Constant(name)


# --- measuring ---------------------------------------------------------------------------------------

def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def payload_files(work: Path, input_name: str) -> dict[str, str]:
    """The request body of 2 iris rows, per protocol, in files (gRPC's is binary)."""
    from components.benchmark.targets import grpc_payload, rest_payload

    values = [v for row in ROWS for v in row]
    bodies = {"kserve-v1": rest_payload("kserve-v1", input_name, [2, 4], "FP32", values),
              "v2-rest": rest_payload("v2-rest", input_name, [2, 4], "FP32", values),
              "v2-grpc": grpc_payload("v2-grpc", "iris", input_name, [2, 4], "FP32", values)}
    files = {}
    for protocol, body in bodies.items():
        files[protocol] = str(work / f"{protocol}.body")
        Path(files[protocol]).write_bytes(body)
    return files


def cpu_per_request(variant: str, model_dir: str, bodies: dict[str, str], requests: int) -> dict[str, tuple]:
    """(ms of server CPU per request, requests/s) per protocol, for one server."""
    from components.steps.benchmark.core import run_benchmark_step

    http_port, grpc_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", variant, model_dir, "iris", str(http_port),
                               str(grpc_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        wait_ready(http_port, server)
        figures = {}
        for protocol in PROTOCOLS:
            url = f"127.0.0.1:{grpc_port}" if protocol == "v2-grpc" else f"http://127.0.0.1:{http_port}"
            common = {"protocol": protocol, "model": "iris", "payload_file": bodies[protocol], "concurrency": 4,
                      "duration": None, "keep_samples": False}
            run_benchmark_step(url, count=min(500, requests), **common)  # warm up
            before = cpu_seconds(server.pid)
            result = run_benchmark_step(url, count=requests, **common)
            spent = cpu_seconds(server.pid) - before
            if result["success_ratio"] != 1.0:
                raise SystemExit(f"{variant} {model_dir} {protocol}: {result['counts']}")
            figures[protocol] = (spent / requests * 1e3, result["achieved_qps"])
        return figures
    finally:
        server.terminate()
        server.wait()


def wait_ready(http_port: int, server: subprocess.Popen) -> None:
    """Until the v2 ready probe answers (the server exiting is fatal)."""
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit("the model server exited while loading")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/models/iris/ready", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the model server was not ready after 60 s")


def cpu_table(models: dict[str, str], bodies: dict[str, str], requests: int) -> None:
    """Part 1: CPU per request before/after, per model and protocol, with the model's share."""
    figures = {(variant, model): cpu_per_request(variant, path, bodies, requests)
               for variant in ("stock", "lean") for model, path in models.items()}
    print(f"\n## 1. model server CPU per request (ms), 2 rows, {requests} requests at 4 in flight, "
          "same run (requests/s in brackets)")
    print(f"{'model':12} {'protocol':10} {'stock KServe':>20} {'meshserve lean':>20} {'ratio':>6}")
    for model in models:
        for protocol in PROTOCOLS:
            stock, stock_rps = figures[("stock", model)][protocol]
            lean, lean_rps = figures[("lean", model)][protocol]
            print(f"{model:12} {protocol:10} {stock:9.3f} ({stock_rps:6.0f}/s) {lean:9.3f} ({lean_rps:6.0f}/s) "
                  f"{stock / lean:5.2f}x")
    print("\nthe model's own share (its CPU per request minus the constant model's, same server and protocol):")
    for model in (m for m in models if m != "constant"):
        for protocol in PROTOCOLS:
            shares = [figures[(v, model)][protocol][0] - figures[(v, "constant")][protocol][0]
                      for v in ("stock", "lean")]
            print(f"  {model:12} {protocol:10} stock {shares[0]:6.3f} ms   lean {shares[1]:6.3f} ms")


# --- through the router ----------------------------------------------------------------------------

def seed_002_runs(root: Path, storage_uri: str, runs: int, seconds: float, replicas: int) -> None:
    """Part 2: seed 002's load `runs` times; part 3: the highest rate under 10 ms at p99."""
    from components.platform.local import LocalPlatform
    from components.platform.protocol import ModelRef

    platform = LocalPlatform(root)
    platform.deploy_version("sklearn-iris", storage_uri, replicas=replicas)
    platform.promote(ModelRef("sklearn-iris"))
    try:
        router = platform.status().gateway["http"]
        print(f"\n## 2. seed 002: sklearn-iris, v1 REST via the router, 500 qps, {seconds:.0f} s, "
              f"{replicas} replica(s), client + router + server on this machine ({os.cpu_count()} cores)")
        print(f"{'':14} {'p50':>7} {'p90':>7} {'p95':>7} {'p99':>7} {'max':>8} {'success':>9} {'qps':>7}")
        print(f"{'seed (ASM)':14} " + " ".join(f"{SEED_002[k]:7.3f}" for k in ("p50", "p90", "p95", "p99"))
              + f" {SEED_002['max']:8.3f} {1:9.2%} {500:7.1f}")
        for run in range(1, runs + 1):
            result = through_router(router, 500, seconds)
            latency = result["latency_ms"]
            print(f"{'run ' + str(run):14} " + " ".join(f"{latency[k]:7.3f}" for k in ("p50", "p90", "p95", "p99"))
                  + f" {latency['max']:8.3f} {result['success_ratio']:9.2%} {result['achieved_qps']:7.1f}")
        highest_rate(router)
    finally:
        platform.down()


def through_router(router: str, qps: float, seconds: float) -> dict:
    """One open-loop load of seed 002's request through the router."""
    import json

    from components.steps.benchmark.core import run_benchmark_step

    return run_benchmark_step(router, protocol="kserve-v1", model="sklearn-iris", qps=qps, duration=seconds,
                              warmup=2.0, concurrency=64, headers=["Host: sklearn-iris.kserve-test.example.com"],
                              payload=json.dumps({"instances": ROWS}), keep_samples=False)


def highest_rate(router: str, step: int = 250, seconds: float = 10.0) -> None:
    """Climb from 500 qps by `step` until p99 passes 10 ms, the rate is not reached, or a request fails."""
    print(f"\n## 3. the highest rate with p99 <= 10 ms (v1 REST via the router, {seconds:.0f} s per step)")
    best, qps = None, 500
    while qps <= 20000:
        result = through_router(router, qps, seconds)
        p99, achieved = result["latency_ms"]["p99"], result["achieved_qps"]
        print(f"  {qps:6d} qps: achieved {achieved:7.1f}, p50 {result['latency_ms']['p50']:6.3f}, p99 {p99:7.3f} ms, "
              f"success {result['success_ratio']:.2%}")
        if p99 > 10.0 or result["success_ratio"] < 1.0 or achieved < 0.98 * qps:
            break
        best, qps = qps, qps + step
    print(f"highest rate with p99 <= 10 ms: {best} qps" if best else "no rate met p99 <= 10 ms")


def train_models(work: Path) -> dict[str, str]:
    """The sklearn-iris and TensorFlow iris models, plus the constant model's marker."""
    from components.training import TrainConfig, train_model

    models = {"constant": "constant"}
    for framework in ("sklearn", "tensorflow"):
        models[framework] = str(train_model(TrainConfig(framework=framework, dataset="iris", seed=0),
                                            work / framework).model_dir)
    return models


def main() -> None:
    """Parse the flags; run the three parts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", nargs=5, metavar=("VARIANT", "MODEL_DIR", "NAME", "HTTP", "GRPC"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--replicas", type=int, default=None, help="default: the local platform's default")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-router", action="store_true")
    args = parser.parse_args()
    if args.serve:
        variant, model_dir, name, http_port, grpc_port = args.serve
        serve(variant, model_dir, name, int(http_port), int(grpc_port))
        return
    from components.platform.local import default_replicas
    from components.storage import upload_model

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        os.environ["MESHSERVE_STATE_DIR"] = str(work / "state")
        models = train_models(work)
        bodies = payload_files(work, "input")
        if not args.skip_cpu:
            cpu_table(models, bodies, args.requests)
        if not args.skip_router:
            uri = upload_model(Path(models["sklearn"]), "pvc://models/iris").storage_uri
            seed_002_runs(work / "state", uri, args.runs, args.seconds, args.replicas or default_replicas())


if __name__ == "__main__":
    main()
