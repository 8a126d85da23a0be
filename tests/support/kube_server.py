"""A real kube-apiserver + etcd for the tests (../shared/kube), with the CRDs meshserve writes installed.

Built once per machine (about 6 to 10 minutes; `make test` does it before pytest, cached outside the
repo) and started once per test session on 127.0.0.1. No controller runs there: `FakeController`
plays KServe's, ModelMesh's, the Deployment controller's and the OpenVINO operator's part by writing
the status they would write.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.schemas import attach_extension

CRD_FILES = ("kserve/serving.kserve.io_inferenceservices.yaml", "kserve/serving.kserve.io_servingruntimes.yaml",
             "istio/customresourcedefinitions.gen.yaml", "openvino/intel.com_model_servers.yaml")
CRD_KINDS = {"InferenceService", "ServingRuntime", "Gateway", "VirtualService", "DestinationRule", "ModelServer"}


def assets_dir(shared: Path) -> Path:
    """The built kube-apiserver and etcd (built now if missing; cached in $KUBE_ASSETS or ~/.cache)."""
    built = subprocess.run(["bash", str(shared / "kube" / "build-apiserver.sh")], capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"building kube-apiserver failed: {built.stdout[-500:]} {built.stderr[-500:]}")
    return Path(built.stdout.strip().splitlines()[-1])


@dataclass
class KubeServer:
    """A running kube-apiserver: its admin kubeconfig, audit log and run directory."""

    run_dir: Path
    kubeconfig: Path

    @property
    def audit_log(self) -> Path:
        """One JSON object per request."""
        return self.run_dir / "audit.log"

    def audit(self, since_line: int = 0) -> list[dict]:
        """The audit events from line `since_line` on (ResponseComplete stage only)."""
        lines = self.audit_log.read_text().splitlines()[since_line:] if self.audit_log.exists() else []
        return [event for event in map(json.loads, lines) if event.get("stage") == "ResponseComplete"]

    def audit_length(self) -> int:
        """How many lines the audit log has now (a mark for `audit`)."""
        return len(self.audit_log.read_text().splitlines()) if self.audit_log.exists() else 0

    def admin(self):
        """A meshserve Kube connection as the admin."""
        from components.kube.client import connect

        return connect(str(self.kubeconfig))

    def kubeconfig_for_token(self, token: str, path: Path) -> Path:
        """A kubeconfig for the same server with another bearer token (e.g. a ServiceAccount's)."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": "admin", "user": {"token": token}}]
        path.write_text(yaml.safe_dump(config))
        return path

    def stop_apiserver(self) -> list[str]:
        """Kill kube-apiserver only, as a crash would (etcd keeps the data); returns its command line for
        `restart_apiserver`."""
        pid = int((self.run_dir / "apiserver.pid").read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30)
        return command

    def restart_apiserver(self, command: list[str]) -> None:
        """Start kube-apiserver again on the same etcd, and wait until it is ready."""
        log = open(self.run_dir / "apiserver.log", "ab")
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        (self.run_dir / "apiserver.pid").write_text(str(process.pid))
        _wait(self._ready, 60)

    def stop(self) -> None:
        """Kill kube-apiserver and etcd (a test server: nothing to drain or keep)."""
        for name in ("apiserver.pid", "etcd.pid"):
            try:
                os.kill(int((self.run_dir / name).read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    def _ready(self) -> bool:

        try:
            self.admin().api_client.call_api("/readyz", "GET", auth_settings=["BearerToken"],
                                             _preload_content=False, _request_timeout=2)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False


def start_kube_server(shared: Path, run_dir: Path) -> KubeServer:
    """Start the server and install the CRDs (Istio's with the ASM extension attached)."""
    assets = assets_dir(shared)
    started = subprocess.run(["bash", str(shared / "kube" / "start-apiserver.sh"), str(assets), str(run_dir)],
                             capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        raise RuntimeError(f"kube-apiserver did not start: {started.stderr[-500:]}")
    server = KubeServer(run_dir, Path(started.stdout.strip().splitlines()[-1]))
    install_crds(server, shared, run_dir)
    return server


def install_crds(server: KubeServer, shared: Path, work: Path) -> None:
    """The pinned CRDs meshserve writes, in a form v1.20 accepts, with the ASM fields added to Istio's."""
    from kubernetes import client

    from components.contracts import load_schema

    extended = work / "crds-extended.yaml"
    documents = []
    for relative in CRD_FILES:
        for crd in yaml.safe_load_all((shared / "schemas" / relative).read_text()):
            if crd and crd["spec"]["names"]["kind"] in CRD_KINDS:
                for version in crd["spec"]["versions"]:
                    attach_extension(version["schema"]["openAPIV3Schema"], crd["spec"]["names"]["kind"],
                                     _structural(load_schema("asm_extensions")))
                documents.append(crd)
    extended.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    prepared = subprocess.run([sys.executable, str(shared / "kube" / "prepare-crds.py"), str(extended)],
                              capture_output=True, text=True, check=True).stdout
    api = client.ApiextensionsV1Api(server.admin().api_client)
    for crd in yaml.safe_load_all(prepared):
        api.create_custom_resource_definition(crd)
    for crd in yaml.safe_load_all(prepared):
        _wait(lambda name=crd["metadata"]["name"]: _established(api, name), 30)
    _wait(lambda: _served(server), 30)


def _structural(schema):
    """A JSON Schema in the structural form a CRD takes (a CRD closes objects itself: no additionalProperties)."""
    if isinstance(schema, dict):
        return {key: _structural(value) for key, value in schema.items()
                if not (key == "additionalProperties" and value is False)}
    if isinstance(schema, list):
        return [_structural(item) for item in schema]
    return schema


def create_namespace(server: KubeServer, name: str) -> None:
    """A namespace (the server runs no namespace controller, so tests use a fresh one each)."""
    from kubernetes import client

    client.CoreV1Api(server.admin().api_client).create_namespace({"metadata": {"name": name}})


def service_account_token(server: KubeServer, namespace: str, name: str) -> str:
    """A token for the ServiceAccount from the TokenRequest API."""
    from kubernetes import client

    core = client.CoreV1Api(server.admin().api_client)
    request = {"spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600}}
    return core.create_namespaced_service_account_token(name, namespace, request).status.token


class FakeController(threading.Thread):
    """Plays the controllers: every 0.1 s, writes the status `behaviour` asks for on each object it sees.

    behaviour(obj) returns "ready", "pending" (write nothing) or ("failed", reason). Status is written
    through the status subresource, as a controller does; an object is marked once per generation.
    """

    def __init__(self, server: KubeServer, namespace: str, behaviour: Callable[[dict], object]):
        super().__init__(daemon=True)
        self.kube = server.admin()
        self.namespace = namespace
        self.behaviour = behaviour
        self.halt = threading.Event()
        self.marked: set[tuple[str, str, int]] = set()

    def run(self) -> None:
        """Poll and mark until stopped."""
        while not self.halt.wait(0.1):
            try:
                self._mark_all()
            except Exception:  # noqa: BLE001 - the server may be stopped on purpose; keep polling
                continue

    def stop(self) -> None:
        """Stop polling."""
        self.halt.set()
        self.join(timeout=5)

    def _mark_all(self) -> None:
        for api_version, kind in (("serving.kserve.io/v1beta1", "InferenceService"), ("apps/v1", "Deployment"),
                                  ("intel.com/v1alpha1", "ModelServer")):
            for obj in self.kube.list(api_version, kind, self.namespace):
                key = (kind, obj["metadata"]["uid"], obj["metadata"].get("generation", 1))
                if key in self.marked:
                    continue
                verdict = self.behaviour(obj)
                if verdict == "pending":
                    continue
                status = _STATUS[kind](obj, verdict)
                resource = self.kube.resource(api_version, kind)
                resource.status.patch(body={"status": status}, name=obj["metadata"]["name"],
                                      namespace=self.namespace, content_type="application/merge-patch+json")
                self.marked.add(key)


def _inference_service_status(obj: dict, verdict) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    generation = obj["metadata"].get("generation", 1)
    if verdict == "ready":
        status = {"observedGeneration": generation, "url": f"http://{obj['metadata']['name']}.example.com",
                  "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                                 {"type": "PredictorReady", "status": "True", "lastTransitionTime": now}],
                  "modelStatus": {"transitionStatus": "UpToDate",
                                  "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}}}
        serverless = (obj["metadata"].get("annotations") or {}).get(
            "serving.kserve.io/deploymentMode") == "Serverless"
        return status | ({"components": {"predictor": _serverless_predictor(obj)}} if serverless else {})
    if verdict == "unready":
        return {"observedGeneration": generation, "conditions": [
            {"type": "Ready", "status": "False", "reason": "PredictorNotReady", "message": "0/1 pods ready",
             "lastTransitionTime": now}], "modelStatus": {"transitionStatus": "InProgress",
                                                          "states": {"activeModelState": "Loading"}}}
    _, reason = verdict
    return {"observedGeneration": generation, "conditions": [
        {"type": "Ready", "status": "False", "reason": "ModelLoadFailed", "message": reason,
         "lastTransitionTime": now}], "modelStatus": {"transitionStatus": "BlockedByFailedLoad",
                                                      "states": {"activeModelState": "FailedToLoad"},
                                                      "lastFailureInfo": {"reason": "ModelLoadFailed",
                                                                          "message": reason}}}


def _serverless_predictor(obj: dict) -> dict:
    """What KServe's controller writes for a Serverless predictor once the generation's revision is ready: the
    revisions (one a generation, as Knative creates them), and the traffic split by canaryTrafficPercent between
    the latest revision and the one last rolled out, with a URL per tag under tag routing."""
    meta = obj["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    latest = f"{name}-predictor-{meta.get('generation', 1):05d}"
    before = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
    rolled_out = before.get("latestRolledoutRevision", "")
    canary = (obj["spec"].get("predictor") or {}).get("canaryTrafficPercent")
    tagged = (meta.get("annotations") or {}).get("serving.kserve.io/enable-tag-routing") == "true"

    def target(revision: str, latest_revision: bool, percent: int, tag: str) -> dict:
        entry = {"revisionName": revision, "latestRevision": latest_revision, "percent": percent}
        url = f"http://{tag}-{name}-predictor.{namespace}.example.com"
        return entry | ({"tag": tag, "url": url} if tagged else {})

    if canary is not None and rolled_out and rolled_out != latest:
        revisions = {"latestRolledoutRevision": rolled_out,
                     "previousRolledoutRevision": before.get("previousRolledoutRevision", "")}
        traffic = [target(latest, True, canary, "latest"), target(rolled_out, False, 100 - canary, "prev")]
    else:
        revisions = {"latestRolledoutRevision": latest, "previousRolledoutRevision": rolled_out}
        traffic = [target(latest, True, 100, "latest")]
    revisions = {key: value for key, value in revisions.items() if value}  # omitted when empty, as KServe's omitempty
    return {"latestCreatedRevision": latest, "latestReadyRevision": latest, **revisions, "traffic": traffic,
            "url": f"http://{name}-predictor.{namespace}.example.com"}


def _deployment_status(obj: dict, verdict) -> dict:
    replicas = obj["spec"].get("replicas", 1)
    generation = obj["metadata"].get("generation", 1)
    if verdict == "ready":
        return {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}
    reason = verdict[1] if isinstance(verdict, tuple) else "waiting"
    return {"observedGeneration": generation, "replicas": replicas, "unavailableReplicas": replicas,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                            "message": reason}]}


def _model_server_status(obj: dict, verdict) -> dict:
    if verdict == "ready":
        return {"conditions": [{"type": "Deployed", "status": "True", "reason": "InstallSuccessful"}]}
    reason = verdict[1] if isinstance(verdict, tuple) else "waiting"
    return {"conditions": [{"type": "ReleaseFailed", "status": "True", "reason": "InstallError", "message": reason}]}


_STATUS = {"InferenceService": _inference_service_status, "Deployment": _deployment_status,
           "ModelServer": _model_server_status}


def _established(api, name: str) -> bool:
    conditions = api.read_custom_resource_definition(name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _served(server: KubeServer) -> bool:
    from kubernetes import client

    groups = {g.name for g in client.ApisApi(server.admin().api_client).get_api_versions().groups}
    return {"serving.kserve.io", "networking.istio.io", "intel.com"} <= groups


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"condition not met after {timeout}s")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def decode_token_subject(token: str) -> str:
    """The `sub` claim of a ServiceAccount token (system:serviceaccount:NS:NAME)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


RBAC_DIR = Path(__file__).resolve().parents[2] / "manifests" / "rbac"


def rbac_objects(namespace: str, components: tuple[str, ...] = (), accounts: tuple[str, ...] = ("meshserve-steps",)
                 ) -> list[dict]:
    """manifests/rbac (and the named optional components) for `namespace`, bound to `accounts`."""
    objects = []
    for folder in (RBAC_DIR, *(RBAC_DIR / c for c in components)):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        for resource in kustomization["resources"]:
            objects += [o for o in yaml.safe_load_all((folder / resource).read_text()) if o]
    bound = []
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            bound += [{**obj, "metadata": {**obj["metadata"], "name": account}} for account in accounts]
            continue
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            obj["subjects"] = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}
                               for account in accounts]
        bound.append(obj)
    for obj in bound:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            obj["metadata"]["namespace"] = namespace
        else:
            obj["metadata"]["name"] = f"{obj['metadata']['name']}-{namespace}"
            if obj["kind"] == "ClusterRoleBinding":
                obj["roleRef"]["name"] = f"{obj['roleRef']['name']}-{namespace}"
    return bound


def steps_kubeconfig(server: KubeServer, namespace: str, account: str, work: Path) -> Path:
    """A kubeconfig that acts as the ServiceAccount (a TokenRequest token)."""
    return server.kubeconfig_for_token(service_account_token(server, namespace, account),
                                       work / f"kubeconfig-{account}")
