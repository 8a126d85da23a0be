"""The same progressive rollout on a real kube-apiserver (the tests playing KServe's and Istio's controllers): the
VirtualService weights (or KServe's canaryTrafficPercent on Serverless) move through each step, one write per step,
while the live guard reads Istio's metrics from a real Prometheus."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from components.gate.policy import load_policy
from components.platform.protocol import ClusterAccess, ModelRef
from components.progressive.policy import rollout_policy_from_dict
from components.rollout.progress import SUCCEEDED
from components.steps.analyze.core import Load
from components.steps.progressive.core import run_progressive_rollout, step_table
from tests.support.prometheus_server import prometheus_version, start_prometheus
from tests.support.servers import serve_bytes
from tests.test_kubernetes_platform import controller, digits, isvc, platform, serverless, weights

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None and not os.path.exists("/usr/bin/prometheus"),
                                reason="needs Debian's prometheus: `make test` installs it")
STARTED = time.monotonic()
WORKLOADS = ("digits-v1-predictor", "digits-v2-predictor", "digits-predictor")
NAMESPACE = {"name": ""}  # the test's namespace, which the exporter labels its series with


def istio_exposition() -> str:
    """Every workload answering 20 requests a second, all 200 within 5 ms, as destination sidecars report."""
    total = 20 * (time.monotonic() - STARTED)
    lines = []
    for workload in WORKLOADS:
        labels = (f'reporter="destination",destination_workload_namespace="{NAMESPACE["name"]}",'
                  f'destination_workload="{workload}"')
        lines.append(f'istio_requests_total{{{labels},response_code="200"}} {total}')
        lines += [f'istio_request_duration_milliseconds_bucket{{{labels},le="{le}"}} {total}' for le in (5, "+Inf")]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    exporter = serve_bytes(lambda: istio_exposition().encode())
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), [f"127.0.0.1:{exporter.server_address[1]}"])
    yield server
    server.stop()
    exporter.shutdown()


class Watch:
    """Records each distinct value `read` gives while it runs (the weights as the controllers would see them)."""

    def __init__(self, read):
        self.read, self.seen, self.running = read, [], True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while self.running:
            self._record()
            time.sleep(0.1)

    def _record(self):
        value = self.read()
        if not self.seen or self.seen[-1] != value:
            self.seen.append(value)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self._record()  # where it ended


def roll_out(server, namespace, prometheus):
    NAMESPACE["name"] = namespace
    policy = rollout_policy_from_dict({"steps": [10, 50, 100], "interval_s": 2.0, "intervals_per_step": 1,
                                       "analysis_steps": [], "guard": {"address": prometheus.address,
                                                                       "min_requests": 5}})
    time.sleep(3)  # the namespace's series are scraped
    outcome = run_progressive_rollout("digits", policy, load_policy(), Load(), platform="kubernetes",
                                      namespace=namespace, cluster=ClusterAccess(str(server.kubeconfig)),
                                      report=lambda line: None)
    print(f"\n{prometheus_version()}\n" + step_table(outcome.progress))
    return outcome.progress


def writes_to(server, since: int, namespace: str, resource: str, name: str) -> int:
    return sum(1 for event in server.audit(since) if event["verb"] in ("patch", "update", "create")
               and event.get("objectRef", {}).get("namespace") == namespace
               and event["objectRef"].get("resource") == resource and event["objectRef"].get("name") == name
               and not event["objectRef"].get("subresource"))  # the spec, not the status the controllers write


def test_the_virtualservice_weights_move_through_each_step_one_write_each(kube_server, kube_namespace, prometheus):
    with controller(kube_server, kube_namespace):
        cluster = platform(kube_server)
        cluster.deploy_spec(digits(kube_namespace, "v1"))
        cluster.promote(ModelRef("digits", kube_namespace))
        cluster.deploy_spec(digits(kube_namespace, "v2", canary_percent=0))
        mark = kube_server.audit_length()
        with Watch(lambda: weights(kube_server, kube_namespace)) as watch:
            progress = roll_out(kube_server, kube_namespace, prometheus)
        promote_writes = 1
    assert progress.phase == SUCCEEDED, progress.message
    assert [step.guard[-1]["outcome"] for step in progress.steps] == ["pass"] * 3  # no data only paused a step
    assert {reading["outcome"] for step in progress.steps for reading in step.guard} <= {"pass", "no data"}
    assert progress.steps[0].guard[0]["queries"]["request-count"].count('destination_workload="digits-v2-predictor"')
    assert watch.seen == [[("digits-v1-predictor", 100), ("digits-v2-predictor", 0)],
                          [("digits-v1-predictor", 90), ("digits-v2-predictor", 10)],
                          [("digits-v1-predictor", 50), ("digits-v2-predictor", 50)],
                          [("digits-v1-predictor", 0), ("digits-v2-predictor", 100)],
                          [("digits-v2-predictor", None)]]
    assert writes_to(kube_server, mark, kube_namespace, "virtualservices", "digits") == 3 + promote_writes


def test_a_serverless_canary_percent_moves_through_each_step_one_write_each(kube_server, kube_namespace, prometheus):
    with controller(kube_server, kube_namespace):
        cluster = platform(kube_server)
        cluster.deploy_spec(serverless(kube_namespace, "v1"))
        cluster.promote(ModelRef("digits", kube_namespace))
        cluster.deploy_spec(serverless(kube_namespace, "v2", 0))
        mark = kube_server.audit_length()
        with Watch(lambda: isvc(kube_server, kube_namespace, "digits")["spec"]["predictor"].get(
                "canaryTrafficPercent")) as watch:
            progress = roll_out(kube_server, kube_namespace, prometheus)
    assert progress.phase == SUCCEEDED, progress.message
    assert watch.seen == [0, 10, 50, 100, None]
    assert writes_to(kube_server, mark, kube_namespace, "inferenceservices", "digits") == 3 + 1
