"""KServe's own canary rollout (Serverless): `canaryTrafficPercent` on the InferenceService.

KServe splits traffic between the latest ready revision and the new one through Knative; there is no
mesh object to write. The router contributes one field to the runtime's InferenceService.
"""

from __future__ import annotations

from components.errors import InvalidInputError
from components.routing.mesh import DirectRoutes, check_ingress_options
from components.runtimes.kserve import API_VERSION


class KServeCanaryRoutes(DirectRoutes):
    """canaryTrafficPercent on the model's InferenceService."""

    kind = "kserve-canary"
    splits_traffic = True  # between the InferenceService's revisions

    def check(self, spec, runtime) -> None:
        """KServe splits against its last ready revision, so no primary version is named."""
        check_ingress_options(spec)
        if spec.primary_version:
            raise InvalidInputError("primary_version", "KServe's canary splits against the last ready revision",
                                    "drop --primary-version")

    def objects(self, spec, runtime) -> list[dict]:
        """The InferenceService's canary field, merged into the runtime's object."""
        return [{"apiVersion": API_VERSION, "kind": "InferenceService",
                 "metadata": {"name": spec.object_name, "namespace": spec.namespace},
                 "spec": {"predictor": {"canaryTrafficPercent": spec.canary_percent}}}]
