"""How a step pod reaches model storage on a cluster: the claim's mount and the storage Secret.

In a pod, a `pvc://CLAIM/PATH` location resolves to PVC_MOUNT_ROOT/CLAIM/PATH (see
components.storage.filesystems.pvc_root), so the pipelines mount the models claim there.
Object-store credentials come from the Secret STORAGE_SECRET (keys named like the environment
variables, e.g. AWS_ACCESS_KEY_ID), mounted read-only; it is optional, so pvc:// pipelines run
without it.
"""

from components.storage.filesystems import POD_PVC_ROOT as PVC_MOUNT_ROOT

MODELS_CLAIM = "my-models-pvc"
STORAGE_SECRET = "meshserve-storage"
STORAGE_SECRET_MOUNT = "/var/run/secrets/meshserve/storage"

# Volume names in Argo WorkflowTemplates (KFP names its volumes itself).
MODELS_VOLUME = "models"
STORAGE_SECRET_VOLUME = "storage-secret"

# No MESHSERVE_PVC_ROOT here: a pod finds claims under PVC_MOUNT_ROOT by itself, and kfp.local applies
# task env on this machine too, where pvc:// must stay under the local state directory.
STORAGE_ENV = {"MESHSERVE_STORAGE_SECRET_DIR": STORAGE_SECRET_MOUNT}

__all__ = ["MODELS_CLAIM", "MODELS_VOLUME", "PVC_MOUNT_ROOT", "STORAGE_ENV", "STORAGE_SECRET",
           "STORAGE_SECRET_MOUNT", "STORAGE_SECRET_VOLUME"]
