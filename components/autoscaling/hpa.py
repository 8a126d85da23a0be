"""HorizontalPodAutoscaler (autoscaling/v2) on CPU utilization or on an External QPS metric.

Seed 003 wrote v2beta1's `metricName`/`targetAverageValue`; v2 (GA since Kubernetes 1.23) nests them
as `metric: {name, selector}` and `target: {type: AverageValue, averageValue}`. An HPA is rendered
only when the runtime names a scale target; KServe RawDeployment makes its own CPU HPA.
"""

from __future__ import annotations

from components.deployment.objects import Workload, metadata, scale_target_annotations
from components.deployment.spec import DeploymentSpec

API_VERSION = "autoscaling/v2"


class CpuAutoscaler:
    """Scale on the pods' average CPU utilization (percent of their request)."""

    kind = "hpa-cpu"

    def objects(self, spec: DeploymentSpec, workload: Workload) -> list[dict]:
        """The HPA, when the runtime has a target for one."""
        target = {"type": "Utilization", "averageUtilization": spec.autoscaling.resolved().target}
        metric = {"type": "Resource", "resource": {"name": "cpu", "target": target}}
        return horizontal_pod_autoscaler(spec, workload, metric)


class QpsAutoscaler:
    """Scale on requests per second per pod, read from an External metric (e.g. sls_ingress_qps)."""

    kind = "hpa-qps"

    def objects(self, spec: DeploymentSpec, workload: Workload) -> list[dict]:
        """The HPA, when the runtime has a target for one."""
        scaling = spec.autoscaling.resolved()
        identifier: dict = {"name": scaling.metric}
        if scaling.selector:
            identifier["selector"] = {"matchLabels": dict(scaling.selector)}
        target = {"type": "AverageValue", "averageValue": str(scaling.target)}
        metric = {"type": "External", "external": {"metric": identifier, "target": target}}
        return horizontal_pod_autoscaler(spec, workload, metric)


def horizontal_pod_autoscaler(spec: DeploymentSpec, workload: Workload, metric: dict) -> list[dict]:
    """An HPA NAME-hpa on the workload's scale target with one metric (none when there is no target)."""
    if workload.scale_target is None:
        return []
    scaling = spec.autoscaling.resolved()
    return [{"apiVersion": API_VERSION, "kind": "HorizontalPodAutoscaler",
             "metadata": metadata(spec, f"{workload.name}-hpa", scale_target_annotations(spec)),
             "spec": {"scaleTargetRef": dict(workload.scale_target), "minReplicas": scaling.min_replicas,
                      "maxReplicas": scaling.max_replicas, "metrics": [metric]}}]
