"""How a step pod reaches model storage on a cluster: the claim's mount and the storage Secret.

The pipelines mount the models claim (a run parameter) at MODELS_MOUNT and say so in
$MESHSERVE_PVC_CLAIM_MOUNT, so in the pod `pvc://CLAIM/PATH` resolves to MODELS_MOUNT/PATH whatever the
claim is called (components.storage.filesystems.claim_dir); without it, PVC_MOUNT_ROOT/CLAIM/PATH.
Object-store credentials come from the Secret STORAGE_SECRET (keys named like the environment
variables, e.g. AWS_ACCESS_KEY_ID), mounted read-only; it is optional, so pvc:// pipelines run
without it.
"""

from components.storage.filesystems import CLAIM_MOUNT_ENV
from components.storage.filesystems import POD_PVC_ROOT as PVC_MOUNT_ROOT

MODELS_CLAIM = "my-models-pvc"
MODELS_MOUNT = f"{PVC_MOUNT_ROOT}/models"
STEPS_SERVICE_ACCOUNT = "meshserve-steps"  # manifests/rbac
STORAGE_SECRET = "meshserve-storage"
STORAGE_SECRET_MOUNT = "/var/run/secrets/meshserve/storage"

# Volume names in Argo WorkflowTemplates (KFP names its volumes itself).
MODELS_VOLUME = "models"
STORAGE_SECRET_VOLUME = "storage-secret"

# No MESHSERVE_PVC_ROOT here: a pod finds claims under PVC_MOUNT_ROOT by itself, and kfp.local applies
# task env on this machine too, where pvc:// must stay under the local state directory.
STORAGE_ENV = {"MESHSERVE_STORAGE_SECRET_DIR": STORAGE_SECRET_MOUNT, CLAIM_MOUNT_ENV: MODELS_MOUNT}

__all__ = ["MODELS_CLAIM", "MODELS_MOUNT", "MODELS_VOLUME", "PVC_MOUNT_ROOT", "STEPS_SERVICE_ACCOUNT", "STORAGE_ENV",
           "STORAGE_SECRET", "STORAGE_SECRET_MOUNT", "STORAGE_SECRET_VOLUME"]
