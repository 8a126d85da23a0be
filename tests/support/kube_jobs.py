"""A WorkflowTemplate's steps as Kubernetes Jobs on the single-node cluster: the pod Argo's controller would
create for a script template, without the controller.

The step's own container (image, command, args, env, volume mounts), the workflow's volumes and service account;
what Argo's executor does around it is done with hostPath mounts: the inputs file at `/argo/staging/script` (the
script's `{{inputs.parameters}}`), each input artifact at its declared path, and the outputs directory
(`/tmp/hera-outputs`) on the host, where the DAG runner reads the output parameters and artifacts.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.argo_dag import Step
from tests.support.kube_node import KubeNode

SCRIPT_PATH = "/argo/staging/script"  # where Argo's executor puts a script template's source
OUTPUTS_PATH = "/tmp/hera-outputs"
IMAGE_UID = 1000  # meshserve's images run as uid 1000: what it writes on the host must be its


@dataclass
class JobExecutor:
    """Runs each step as a Job in `namespace`, the steps image replaced by `images` (a tag in the node's
    containerd); records how long each Job took, from create to complete."""

    node: KubeNode
    namespace: str
    images: dict[str, str]
    run_name: str
    deadline_s: int = 300
    seconds: dict[str, float] | None = None

    def __call__(self, step: Step) -> tuple[int, str]:
        """Create the step's Job, wait for it to end; its exit code (0 or 1) and its pod's log."""
        for path in (step.outputs, *step.artifacts.values()):
            _give_to_image_user(path)
        job = self.job(step)
        started = time.monotonic()
        self.node.kubectl("apply", "-f", "-", stdin=json.dumps(job))
        succeeded = self._wait(job["metadata"]["name"])
        if self.seconds is not None:
            self.seconds[step.name] = time.monotonic() - started
        logs = self.node.kubectl("-n", self.namespace, "logs", f"job/{job['metadata']['name']}", check=False)
        return (0 if succeeded else 1), logs.stdout + logs.stderr

    def job(self, step: Step) -> dict:
        """The batch/v1 Job running the step's container as Argo would run it."""
        script = step.template["script"]
        mounts = [*script.get("volumeMounts", []),
                  {"name": "argo-script", "mountPath": SCRIPT_PATH, "readOnly": True},
                  {"name": "argo-outputs", "mountPath": OUTPUTS_PATH}]
        volumes = [v for v in step.volumes if any(m["name"] == v["name"] for m in mounts)]
        volumes += [_host("argo-script", str(step.inputs_file)), _host("argo-outputs", str(step.outputs))]
        for index, (target, source) in enumerate(sorted(step.artifacts.items())):
            mounts.append({"name": f"artifact-{index}", "mountPath": str(target), "readOnly": True})
            volumes.append(_host(f"artifact-{index}", str(source)))
        env = [*script.get("env", []), *({"name": k, "value": v} for k, v in step.env.items())]
        container = {"name": "main", "image": self.images.get(script["image"], script["image"]),
                     "imagePullPolicy": "Never", "command": script["command"], "args": [*script["args"], SCRIPT_PATH],
                     "env": env, "volumeMounts": mounts}
        pod = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
        if step.service_account:
            pod["serviceAccountName"] = step.service_account
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": f"{self.run_name}-{step.name}", "namespace": self.namespace,
                             "labels": {"workflows.argoproj.io/workflow": self.run_name}},
                "spec": {"backoffLimit": 0, "activeDeadlineSeconds": self.deadline_s,
                         "template": {"metadata": {"labels": {"workflows.argoproj.io/workflow": self.run_name}},
                                      "spec": pod}}}

    def _wait(self, name: str) -> bool:
        deadline = time.monotonic() + self.deadline_s + 30
        while time.monotonic() < deadline:
            status = json.loads(self.node.kubectl("-n", self.namespace, "get", "job", name, "-o",
                                                  "jsonpath={.status}").stdout or "{}")
            if status.get("succeeded"):
                return True
            if status.get("failed"):
                return False
            time.sleep(0.5)
        raise AssertionError(f"Job {name} did not end in {self.deadline_s + 30} s")


def _host(name: str, path: str) -> dict:
    return {"name": name, "hostPath": {"path": path}}


def _give_to_image_user(path: Path) -> None:
    """The image's user owns what the step writes and reads on the host, as a pod's fsGroup would arrange on a
    real volume."""
    for entry in (path, *path.rglob("*")) if path.is_dir() else (path,):
        os.chown(entry, IMAGE_UID, 0)
