"""KServe's own canary rollout (Serverless): `canaryTrafficPercent` on the InferenceService.

KServe splits traffic between the revision last rolled out and the new one through Knative; there is no mesh
object to write. The candidate goes into the model's one InferenceService, with the canary's share: the router
contributes that field and tag routing (`serving.kserve.io/enable-tag-routing`), under which KServe's status
names a URL for each revision (`latest`, `prev`), so an analysis reaches each alone through the ingress.
Promote removes the field (KServe rolls the latest revision out); rollback puts back the InferenceService as it
was recorded before the rollout.
"""

from __future__ import annotations

from typing import Any

from components.errors import PlatformError
from components.routing.mesh import DirectRoutes, check_ingress_options, ingress_of
from components.routing.spec import ClientEndpoint
from components.runtimes.kserve import API_VERSION

TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
TRACK_TAGS = {"canary": "latest", "primary": "prev"}  # KServe's tags for the revision rolling out and the last one


class KServeCanaryRoutes(DirectRoutes):
    """canaryTrafficPercent on the model's InferenceService, which splits between its revisions."""

    kind = "kserve-canary"
    splits_traffic = True  # between the InferenceService's revisions
    in_place = True

    def check(self, spec, runtime) -> None:
        """No options but the ingress's (a `primary_version` says a rollout is under way beside that version)."""
        check_ingress_options(spec)

    def objects(self, spec, runtime) -> list[dict]:
        """The InferenceService's canary share during a rollout, and tag routing, merged into the runtime's object."""
        rolling_out = bool(spec.canary_percent or spec.primary_version)
        predictor = {"canaryTrafficPercent": spec.canary_percent} if rolling_out else {}
        return [{"apiVersion": API_VERSION, "kind": "InferenceService",
                 "metadata": {"name": spec.object_name, "namespace": spec.namespace,
                              "annotations": {TAG_ROUTING: "true"}},
                 "spec": {"predictor": predictor}}]

    def owned(self, spec, runtime) -> tuple[tuple[str, str], ...]:
        """The model's InferenceService: its canary share is this router's, and rollback puts it back whole."""
        return ((API_VERSION, "InferenceService"),)

    def split(self, objects: list[dict], spec, runtime, versions: list[str]) -> dict[str, int] | None:
        """The share KServe reports for the latest revision (the canary, the last of `versions`) and the rest
        (the primary); None until KServe reports traffic."""
        traffic = _predictor_status(objects[0] if objects else {}).get("traffic") or []
        if not traffic:
            return None
        latest = sum(int(entry.get("percent") or 0) for entry in traffic if entry.get("latestRevision"))
        shares = {versions[-1]: latest}
        if len(versions) > 1:
            shares[versions[0]] = sum(int(entry.get("percent") or 0) for entry in traffic
                                      if not entry.get("latestRevision"))
        return shares

    def client(self, spec, runtime: Any, track: str, live_object: dict) -> ClientEndpoint:
        """With a track, the ingress with the Host of the URL KServe's tag routing gives that revision (`latest`
        for the canary, `prev` for the primary); else the InferenceService's own URL."""
        if not track:
            return super().client(spec, runtime, track, live_object)
        tag = TRACK_TAGS[track]
        url = next((str(entry.get("url") or "") for entry in _predictor_status(live_object).get("traffic") or []
                    if entry.get("tag") == tag), "")
        if not url:
            raise PlatformError("router", f"InferenceService {spec.object_name} reports no {tag!r} revision URL",
                                f"check that KServe honours {TAG_ROUTING} (KServe 0.9 or later, Serverless)")
        return ClientEndpoint(f"http://{ingress_of(spec)}", {"Host": url.split("://", 1)[-1].split("/", 1)[0]})


def _predictor_status(obj: dict) -> dict:
    return ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
