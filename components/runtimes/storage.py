"""How serving pods reach a model in storage, shared by the runtimes.

Keys never appear in an object: KServe reads them from the Secret its ServiceAccount lists, and the
OSS CSI driver from the Secret a PersistentVolume names in `nodePublishSecretRef` (seed 003 writes
them inline in the PV; meshserve never does).
"""

from __future__ import annotations

from components.deployment.objects import metadata
from components.deployment.spec import DeploymentSpec
from components.errors import InvalidInputError

OSS_CSI_DRIVER = "ossplugin.csi.alibabacloud.com"
POD_MODELS_ROOT = "/models"


def kserve_storage_uri(spec: DeploymentSpec) -> str:
    """The storageUri KServe's storage initializer reads; OSS goes through its S3-compatible API."""
    if spec.scheme == "oss":
        return f"s3://{spec.bucket_or_claim}/{spec.path}".rstrip("/")
    return spec.storage_uri


def storage_service_account(spec: DeploymentSpec) -> dict | None:
    """The ServiceAccount that lists the storage Secret, with KServe's S3 settings, for s3:// and oss://.

    KServe's storage initializer takes the keys from the Secrets the predictor's ServiceAccount lists,
    and its s3-* annotations say which endpoint to use (OSS: virtual-hosted buckets).
    """
    if spec.scheme not in ("s3", "oss") or not spec.storage.secret:
        return None
    annotations = {"serving.kserve.io/s3-usehttps": "1" if spec.storage.s3_use_https else "0"}
    endpoint = spec.storage.s3_endpoint or spec.storage.oss_url
    if endpoint:
        annotations["serving.kserve.io/s3-endpoint"] = endpoint.removeprefix("https://").removeprefix("http://")
    if spec.storage.s3_region:
        annotations["serving.kserve.io/s3-region"] = spec.storage.s3_region
    if spec.scheme == "oss":
        annotations["serving.kserve.io/s3-usevirtualbucket"] = "true"
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": metadata(spec, storage_service_account_name(spec), annotations, versioned=False),
            "secrets": [{"name": spec.storage.secret}]}


def storage_service_account_name(spec: DeploymentSpec) -> str:
    """The spec's ServiceAccount, else NAME-storage."""
    return spec.service_account or f"{spec.name}-storage"


def check_object_store_access(spec: DeploymentSpec) -> None:
    """OSS needs its endpoint (KServe reaches it through the S3 API)."""
    if spec.scheme == "oss" and not (spec.storage.oss_url or spec.storage.s3_endpoint):
        raise InvalidInputError("storage.oss_url", "oss:// needs the bucket's OSS endpoint",
                                "pass --storage-option oss_url=oss-REGION.aliyuncs.com")


def models_claim(spec: DeploymentSpec) -> str:
    """The claim mounted at /models: the pvc:// claim, or the claim meshserve renders for an OSS bucket."""
    if spec.scheme == "pvc":
        return spec.bucket_or_claim
    return spec.storage.claim or f"{spec.name}-models"


def pod_model_path(spec: DeploymentSpec) -> str:
    """Where the model sits inside the pod once the claim is mounted at /models."""
    return f"{POD_MODELS_ROOT}/{spec.path}".rstrip("/")


def oss_volume_objects(spec: DeploymentSpec) -> list[dict]:
    """An OSS CSI PersistentVolume (keys from a Secret) and the claim bound to it (seed 003)."""
    if not spec.storage.secret:
        raise InvalidInputError("storage.secret", "the OSS CSI driver needs the Secret with akId and akSecret",
                                "create it and pass --storage-secret NAME")
    if not spec.storage.oss_url:
        raise InvalidInputError("storage.oss_url", "the OSS CSI driver needs the bucket's endpoint",
                                "pass --storage-option oss_url=oss-REGION.aliyuncs.com")
    volume = spec.storage.volume or f"{spec.name}-oss-{spec.namespace}"
    attributes = {"bucket": spec.bucket_or_claim, "url": spec.storage.oss_url}
    if spec.storage.mount_options:
        attributes["otherOpts"] = spec.storage.mount_options
    persistent_volume = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": metadata(spec, volume, namespaced=False, versioned=False),
        "spec": {"capacity": {"storage": spec.storage.size}, "accessModes": ["ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                 "csi": {"driver": OSS_CSI_DRIVER, "volumeHandle": volume, "volumeAttributes": attributes,
                         "nodePublishSecretRef": {"name": spec.storage.secret, "namespace": spec.namespace}}}}
    claim = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": metadata(spec, models_claim(spec), versioned=False),
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": spec.storage.size}},
                 "storageClassName": "", "volumeName": volume}}
    return [persistent_volume, claim]
