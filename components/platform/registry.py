"""Platform names to implementations; an unknown name is an error, never a fallback."""

from __future__ import annotations

import importlib

from components.errors import InvalidInputError
from components.platform.protocol import ClusterAccess, Platform

PLATFORM_CLASSES = {
    "local": ("components.platform.local", "LocalPlatform"),
    "kubernetes": ("components.platform.kubernetes.platform", "KubernetesPlatform"),
}
PLATFORMS = tuple(PLATFORM_CLASSES)


def platform_class(name: str) -> type[Platform]:
    """The platform class registered under `name` (nothing is reached yet)."""
    if name not in PLATFORM_CLASSES:
        raise InvalidInputError("platform", f"unknown platform {name!r}", f"use one of {', '.join(PLATFORMS)}")
    module, attribute = PLATFORM_CLASSES[name]
    return getattr(importlib.import_module(module), attribute)


def platform_for(name: str, cluster: ClusterAccess | None = None) -> Platform:
    """The platform registered under `name`, connected (a cluster as `cluster` says, else the pod's own)."""
    return platform_class(name).connect(cluster or ClusterAccess())
