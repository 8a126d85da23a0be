"""A real single-node cluster for the tests (../shared/kube-node): kubelet, containerd with runc, CNI, kube-proxy,
the real controllers and scheduler, where pods really run.

`make kube-node` builds its binaries once (cached in $KUBE_NODE, else ~/.cache/kube-node); the session fixture
starts the node (20-40 s) and stops it after the session. A node already running (started by hand from the same
scripts) is used as it is and left running. meshserve's images go into containerd under a tag derived from
podman's image id, so an unchanged image is imported once.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.containers import engine_env, podman

WORK = Path("/tmp/kn")
CONTAINERD = WORK / "run" / "containerd.sock"
SERVICE_RANGE, BRIDGE = "10.96.0.0/24", "kncni0"  # start-apiserver.sh's --service-cluster-ip-range; the CNI bridge


class NodeUnavailable(Exception):
    """The node cannot run here; the message says why."""


def node_binaries() -> Path:
    """Where `make kube-node` put the node's binaries."""
    return Path(os.environ.get("KUBE_NODE", Path.home() / ".cache" / "kube-node")) / "bin"


@dataclass
class KubeNode:
    """A running node: its admin kubeconfig, its binaries, and what it took to start."""

    kubeconfig: Path
    bin: Path
    started_here: bool
    start_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True, stdin: str | None = None
                ) -> subprocess.CompletedProcess:
        """One kubectl command against the node (`stdin`: what it reads, for `-f -`)."""
        done = subprocess.run([str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args[:3])} exited {done.returncode}: {done.stderr[-2000:]}")
        return done

    def import_image(self, image: str) -> str:
        """Put a podman image into the node's containerd (once per image id); the name pods run it by."""
        image_id = podman("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()[:12]
        local = f"localhost/meshserve/{image.rsplit('/', 1)[-1].split(':')[0]}:{image_id}"
        listed = subprocess.run(["ctr", "-a", str(CONTAINERD), "-n", "k8s.io", "images", "ls", "-q"],
                                capture_output=True, text=True, check=True).stdout.split()
        if local not in listed:
            podman("tag", image, local)
            saved = subprocess.Popen(["podman", "save", local], stdout=subprocess.PIPE, env=engine_env())
            subprocess.run(["ctr", "-a", str(CONTAINERD), "-n", "k8s.io", "images", "import", "-"],
                           stdin=saved.stdout, capture_output=True, check=True, timeout=600)
            saved.wait(timeout=60)
        return local


def start_node(shared: Path) -> KubeNode:
    """The node, started now (or found running); NodeUnavailable says why it cannot be."""
    scripts, binaries = shared / "kube-node", node_binaries()
    if not (scripts / "start-node.sh").is_file():
        raise NodeUnavailable(f"{scripts} is absent")
    if os.geteuid() != 0:
        raise NodeUnavailable("the node's kubelet, containerd and iptables rules need root")
    if not (binaries / "kubelet").is_file() or not (WORK / "pause-docker.tar").is_file():
        raise NodeUnavailable(f"the node is not built in {binaries.parent}: run `make kube-node` (about 11 minutes, "
                              "once)")
    kubeconfig = WORK / "cluster" / "kubeconfig"
    if _running() and kubeconfig.is_file():
        _keep_cluster_ips_here()
        return KubeNode(kubeconfig, binaries, started_here=False)
    assets = Path(os.environ.get("KUBE_ASSETS", Path.home() / ".cache" / "kube-assets"))
    started = time.monotonic()
    # KN_INCLUSTER: the API server on the cluster's bridge, with ServiceAccount admission, so pods reach it
    done = subprocess.run(["bash", str(WORK / "start-node.sh"), str(binaries), str(assets),
                           str(WORK / "start-apiserver.sh")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KN_INCLUSTER": "1"})
    node = KubeNode(kubeconfig, binaries, started_here=True, start_seconds=time.monotonic() - started)
    if done.returncode != 0 or "node Ready" not in done.stdout:
        stop_node(node)
        raise NodeUnavailable(f"the node did not start: {(done.stdout + done.stderr)[-600:]}")
    _keep_cluster_ips_here()
    return node


def stop_node(node: KubeNode) -> None:
    """Stop a node this session started (pods, control plane, containerd, rules, the bridge)."""
    if node.started_here:
        subprocess.run(["bash", str(WORK / "stop-node.sh"), str(node.bin)], capture_output=True, timeout=300)


def _keep_cluster_ips_here() -> None:
    """Route the Service range into the cluster's bridge. kube-proxy rewrites a ClusterIP to a pod only while it
    has a rule for it: before its first sync, between a Service's last endpoint going and the next coming (a pod
    replaced), a packet to the ClusterIP followed the default route off this machine, and something out there
    answered 404. Routed to the bridge, it finds nobody and fails here; rewritten, it reaches its pod as before."""
    subprocess.run(["ip", "route", "replace", SERVICE_RANGE, "dev", BRIDGE], check=True, capture_output=True)


def _running() -> bool:
    pid = WORK / "run" / "kubelet.pid"
    try:
        os.kill(int(pid.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True
