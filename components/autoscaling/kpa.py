"""Knative Pod Autoscaler settings (Serverless predictors).

KServe writes Knative's metric, target and min/max-scale annotations from its own fields
(scaleMetric, scaleTarget, minReplicas, maxReplicas); the autoscaler class is the one annotation
it takes as given. minReplicas 0 lets Knative scale the predictor to zero.
"""

from __future__ import annotations

from components.deployment.spec import DeploymentSpec

KNATIVE_CLASS_ANNOTATION = "autoscaling.knative.dev/class"
_CLASSES = {"kpa": "kpa.autoscaling.knative.dev", "hpa-cpu": "hpa.autoscaling.knative.dev"}


def knative_class(kind: str) -> str:
    """Knative's autoscaler class for a meshserve autoscaling kind (kpa, or hpa-cpu through Knative's HPA)."""
    return _CLASSES[kind]


class KnativeAutoscaler:
    """KPA: the runtime writes the fields; nothing to render beside it."""

    kind = "kpa"

    def objects(self, spec: DeploymentSpec, workload) -> list[dict]:
        """No objects of its own."""
        return []
