"""meshserve bench beside hey and wrk, in one run, against the same local targets.

Targets: nginx (one worker) answering a small static JSON, and the local KServe model server with
the iris scikit-learn model (v1 REST). Servers are pinned to CPU 1, clients to CPU 0.

Prints: throughput and requests per client CPU-second (closed loop, 32 connections); p50 at one
connection (client-added latency, the server's own time being tiny for nginx); the achieved rate of
meshserve's open loop at 500 and 2000 qps; and a 1-second server stall (SIGSTOP/SIGCONT) during a
500 qps run, where an open-loop client must report p99 >= 0.9 s and hey (closed loop) does not.

Run: `.venv/bin/python tests/bench/bench_loadgen.py` (needs nginx, hey and wrk: `make bench`
installs them on Debian/Ubuntu). Every load is bounded (seconds below) and targets 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from components.steps.benchmark.core import run_benchmark_step  # noqa: E402
from tests.support.servers import free_port, wait_for_port  # noqa: E402

CLIENT_CPU, SERVER_CPU = {0}, {1}
SECONDS = 5
IRIS_BODY = '{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{{"predictions": [1]}}'; }}
  }}
}}
"""


def _pinned(cpus):
    return lambda: os.sched_setaffinity(0, cpus)


def start_nginx(scratch: Path) -> tuple[subprocess.Popen, str]:
    """nginx with one worker on the server CPU."""
    port = free_port()
    conf = scratch / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=scratch, port=port))
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(scratch)], preexec_fn=_pinned(SERVER_CPU),
                               start_new_session=True)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}/"


def start_model_server(scratch: Path) -> tuple[subprocess.Popen, str]:
    """The local KServe model server with an iris SVM, on the server CPU."""
    from components.training import TrainConfig, train_model

    train_model(TrainConfig(framework="sklearn", dataset="iris"), scratch / "iris")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", str(scratch / "iris"), "--name",
                                "sklearn-iris", "--http-port", str(port), "--grpc-port", str(free_port())],
                               cwd=REPO, preexec_fn=_pinned(SERVER_CPU), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_port(port, timeout=60)
    return process, f"http://127.0.0.1:{port}/v1/models/sklearn-iris:predict"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_tool(command: list[str]) -> tuple[str, float]:
    """Run an external client on the client CPU; return its output and CPU seconds."""
    before = _children_cpu()
    output = subprocess.run(command, capture_output=True, text=True, check=True, preexec_fn=_pinned(CLIENT_CPU),
                            timeout=SECONDS * 4).stdout
    return output, _children_cpu() - before


def hey(url: str, connections: int, post: bool, extra: list[str] = ()) -> dict:
    """hey's requests/s, p50 and p99 (seconds in its report)."""
    body = ["-m", "POST", "-T", "application/json", "-d", IRIS_BODY] if post else []
    out, cpu = run_tool(["hey", "-z", f"{SECONDS}s", "-c", str(connections), *body, *extra, url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = float(re.search(r"50%+ in ([\d.]+) secs", out).group(1)) * 1000
    p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1000
    return {"rps": rps, "cpu": cpu, "p50": p50, "p99": p99}


def wrk(url: str, connections: int, post: bool, scratch: Path) -> dict:
    """wrk's requests/s and p50 (with --latency)."""
    script = []
    if post:
        lua = scratch / "post.lua"
        lua.write_text(f'wrk.method = "POST"\nwrk.body = \'{IRIS_BODY}\'\n'
                       'wrk.headers["Content-Type"] = "application/json"\n')
        script = ["-s", str(lua)]
    out, cpu = run_tool(["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "--latency", *script, url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()
    p50 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"rps": rps, "cpu": cpu, "p50": p50}


def meshserve(url: str, connections: int | None = None, post: bool = False, **kwargs) -> dict:
    """meshserve bench in this process (pinned to the client CPU); CPU seconds of the run alone."""
    os.sched_setaffinity(0, CLIENT_CPU)
    body = {"protocol": "kserve-v1", "payload": IRIS_BODY, "model": "sklearn-iris"} if post else {}
    before = _self_cpu()
    result = run_benchmark_step(url, concurrency=connections or 8, duration=kwargs.pop("duration", SECONDS),
                                keep_samples=False, **body, **kwargs)
    cpu = _self_cpu() - before
    return {"rps": result["achieved_qps"], "cpu": cpu, "p50": result["latency_ms"]["p50"],
            "p99": result["latency_ms"]["p99"], "result": result}


def stall_during(process: subprocess.Popen, after: float, length: float) -> threading.Thread:
    """SIGSTOP the server's process group `after` seconds from now for `length` seconds."""
    def stall():
        time.sleep(after)
        os.killpg(process.pid, signal.SIGSTOP)
        time.sleep(length)
        os.killpg(process.pid, signal.SIGCONT)

    thread = threading.Thread(target=stall)
    thread.start()
    return thread


def throughput_and_latency(name: str, url: str, post: bool, scratch: Path) -> None:
    """Closed-loop throughput at 32 connections and p50 at 1 connection, for the three clients."""
    print(f"\n## {name}: closed loop, {SECONDS} s each, client pinned to one CPU")
    print(f"{'client':10} {'rps @c32':>10} {'rps/CPU-s':>10} {'p50 @c1 ms':>11}")
    rows = {}
    for label, full, single in (
        ("hey", lambda: hey(url, 32, post), lambda: hey(url, 1, post)),
        ("wrk", lambda: wrk(url, 32, post, scratch), lambda: wrk(url, 1, post, scratch)),
        ("meshserve", lambda: meshserve(url, 32, post), lambda: meshserve(url, 1, post)),
    ):
        loaded, idle = full(), single()
        rows[label] = (loaded["rps"], loaded["rps"] * SECONDS / loaded["cpu"], idle["p50"])
        print(f"{label:10} {rows[label][0]:10.0f} {rows[label][1]:10.0f} {rows[label][2]:11.3f}", flush=True)
    print(f"meshserve/hey requests per CPU-second: {rows['meshserve'][1] / rows['hey'][1]:.2f}x; "
          f"meshserve/wrk p50 at c1: {rows['meshserve'][2] / rows['wrk'][2]:.2f}x")


def achieved_rates(url: str, post: bool) -> None:
    """meshserve's open loop: requested against achieved rate."""
    print("\n## open-loop rate accuracy (meshserve, 10 s each)")
    print(f"{'requested':>10} {'achieved':>10} {'error %':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for qps in (500, 2000):
        run = meshserve(url, 32, post, qps=qps, duration=10)
        achieved = run["result"]["achieved_qps"]
        print(f"{qps:10d} {achieved:10.1f} {100 * (achieved - qps) / qps:8.3f} {run['p50']:8.3f} "
              f"{run['p99']:8.3f}", flush=True)


def stall(process: subprocess.Popen, url: str) -> None:
    """A 1 s server stall during 6 s at 500 qps: meshserve (open loop) against hey (closed loop)."""
    print("\n## 1 s server stall (SIGSTOP/SIGCONT) during 6 s at 500 qps")
    thread = stall_during(process, 2.0, 1.0)
    ours = meshserve(url, 32, qps=500, duration=6)
    thread.join()
    thread = stall_during(process, 2.0, 1.0)
    theirs = hey(url, 10, False, ["-q", "50"])  # 10 workers x 50 qps
    thread.join()
    print(f"meshserve open loop: p50 {ours['p50']:.3f} ms  p99 {ours['p99']:.1f} ms  max "
          f"{ours['result']['latency_ms']['max']:.1f} ms  (stall visible: {ours['p99'] >= 900})")
    print(f"hey -q (closed loop): p50 {theirs['p50']:.3f} ms  p99 {theirs['p99']:.1f} ms")


def main() -> None:
    """Run every comparison once; run the script twice to see the machine's noise."""
    for tool in ("nginx", "hey", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run `make bench` (installs nginx-light, hey and wrk) or apt-get install it")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        nginx, nginx_url = start_nginx(scratch)
        model_server, model_url = start_model_server(scratch)
        try:
            throughput_and_latency("nginx static JSON", nginx_url, False, scratch)
            throughput_and_latency("KServe model server, sklearn iris v1", model_url, True, scratch)
            achieved_rates(nginx_url, False)
            stall(nginx, nginx_url)
        finally:
            for process in (nginx, model_server):
                process.send_signal(signal.SIGCONT)
                process.terminate()
                process.wait(timeout=10)
    print(json.dumps({"cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
