"""Model storage in a Hera template's pod: the models claim and the storage Secret mounted, and the settings
that tell the step where (see components.steps.cluster)."""

from hera.workflows import Env
from hera.workflows.models import VolumeMount

from components.steps.cluster import (
    MODELS_MOUNT,
    MODELS_VOLUME,
    STORAGE_ENV,
    STORAGE_SECRET_MOUNT,
    STORAGE_SECRET_VOLUME,
)

STORAGE_MOUNTS = [
    VolumeMount(name=MODELS_VOLUME, mount_path=MODELS_MOUNT),
    VolumeMount(name=STORAGE_SECRET_VOLUME, mount_path=STORAGE_SECRET_MOUNT, read_only=True),
]
STORAGE_ENV_VARS = [Env(name=name, value=value) for name, value in STORAGE_ENV.items()]
