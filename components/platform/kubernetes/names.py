"""The labels and object names meshserve writes on a cluster, in one place."""

from __future__ import annotations

VERSION_LABEL = "meshserve.io/version"
ROUTES_BEFORE = "meshserve.io/routes-before"  # the router's snapshot before the rollout, as flagger keeps the spec
LEASE_HOLDER = "meshserve.io/lease-holder"
MANAGED_BY = "app.kubernetes.io/managed-by=meshserve"


def model_selector(name: str) -> str:
    """The label selector of the objects meshserve wrote for one model."""
    return f"{MANAGED_BY},app.kubernetes.io/name={name}"


def rollout_selector() -> str:
    """The label selector of the namespace's rollout records."""
    return f"{MANAGED_BY},app.kubernetes.io/component=rollout"


def state_name(name: str) -> str:
    """The ConfigMap that holds a model's rollout record."""
    return f"meshserve-rollout-{name}"


def state_labels(name: str) -> dict[str, str]:
    """The labels of a model's rollout record."""
    return {"app.kubernetes.io/managed-by": "meshserve", "app.kubernetes.io/component": "rollout",
            "app.kubernetes.io/name": name}
