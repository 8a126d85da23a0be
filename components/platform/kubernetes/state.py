"""Each model's rollout record on a cluster: a ConfigMap per model, `meshserve-rollout-NAME`, holding the record
(primary, canary), the routes recorded before the rollout (the `meshserve.io/routes-before` annotation, as flagger
keeps the original spec), and a lease that lets one rollout of a model run at a time. Its writes carry the
resourceVersion read; a conflict is read again and retried."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from components.errors import PlatformError
from components.kube.client import Kube
from components.platform.kubernetes.names import LEASE_HOLDER, ROUTES_BEFORE, rollout_selector, state_labels, state_name
from components.platform.kubernetes.versions import ClusterDetails
from components.rollout.contract import ModelRecord

LEASE_SECONDS = 900.0


class ClusterState:
    """Each model's rollout record in a ConfigMap, written under a lease with resourceVersion checks."""

    def __init__(self, kube: Kube, namespace: str, lease_wait_s: float = 60.0):
        self.kube = kube
        self.namespace = namespace
        self.lease_wait_s = lease_wait_s
        self.holder = f"{socket.gethostname()}/{os.getpid()}"

    @contextmanager
    def transaction(self, name: str) -> Iterator[ModelRecord]:
        """The model's record under this process's lease; saved (or deleted, when empty) on success."""
        config_map = self._acquire(name)
        record = _record_of(config_map)
        try:
            yield record
        except BaseException:
            self._write(name, _released)
            raise
        self._write(name, lambda current: _stored(current, record))

    def records(self) -> Iterator[tuple[str, ModelRecord]]:
        """Every model's record in the namespace (one that is not a record is an error)."""
        for name, record in self.readable_records():
            if isinstance(record, PlatformError):
                raise record
            yield name, record

    def readable_records(self) -> Iterator[tuple[str, ModelRecord | PlatformError]]:
        """Every model's record in the namespace, or the error saying why its ConfigMap holds none."""
        for config_map in self.kube.list("v1", "ConfigMap", self.namespace, rollout_selector()):
            name = (config_map["metadata"].get("labels") or {}).get("app.kubernetes.io/name", "?")
            try:
                yield name, _record_of(config_map)
            except PlatformError as problem:
                yield name, problem

    def record(self, name: str) -> ModelRecord:
        """The model's record as stored (empty when none)."""
        return _record_of(self.kube.get("v1", "ConfigMap", state_name(name), self.namespace))

    def _acquire(self, name: str) -> dict:
        deadline = time.monotonic() + self.lease_wait_s
        while True:
            current = self.kube.get("v1", "ConfigMap", state_name(name), self.namespace)
            holder = _lease_of(current)
            if holder is None or holder == self.holder:  # free, expired, or ours (a re-run in this process)
                taken = self._try_write(_with_lease(current or _new_state(name, self.namespace), self.holder),
                                        create=current is None)
                if taken is not None:
                    return taken
            elif time.monotonic() > deadline:
                raise PlatformError("lease", f"another rollout of {name} holds it ({holder})",
                                    "wait for it to finish; a crashed one's lease expires after 15 minutes")
            else:
                time.sleep(1.0)

    def _write(self, name: str, change: Callable[[dict], dict | None]) -> None:
        """Read, change and write back; a 409 (someone wrote in between) is read again and retried."""
        for _ in range(10):
            current = self.kube.get("v1", "ConfigMap", state_name(name), self.namespace)
            if current is None:
                return
            changed = change(current)
            if changed is None:
                self.kube.delete("v1", "ConfigMap", state_name(name), self.namespace)
                return
            if self._try_write(changed, create=False) is not None:
                return
        raise PlatformError("state", f"the rollout record of {name} kept changing underneath", "re-run the step")

    def _try_write(self, obj: dict, create: bool) -> dict | None:
        """The written object, or None on a 409 conflict (its resourceVersion was stale, or it exists)."""
        from kubernetes.dynamic.exceptions import ConflictError

        try:
            return self.kube.create(obj) if create else self.kube.replace(obj)
        except ConflictError:
            return None


def _new_state(name: str, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": state_name(name), "namespace": namespace, "labels": state_labels(name),
                         "annotations": {}},
            "data": {"record": json.dumps(ModelRecord().to_dict())}}


def _record_of(config_map: dict | None) -> ModelRecord:
    """The record a state ConfigMap holds (empty when it has none: a deploy killed before it wrote one);
    one that is not a record is an error naming the ConfigMap."""
    if config_map is None:
        return ModelRecord()
    try:
        record = ModelRecord.from_dict(json.loads((config_map.get("data") or {}).get("record") or "{}"),
                                       ClusterDetails.from_dict)
        before = (config_map["metadata"].get("annotations") or {}).get(ROUTES_BEFORE)
        record.routes_before = json.loads(before) if before else None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        name = config_map.get("metadata", {}).get("name", "?")
        raise PlatformError("state", f"ConfigMap {name} does not hold a meshserve rollout record "
                            f"({type(exc).__name__})", f"inspect it (kubectl get configmap {name} -o yaml); delete "
                            "it to forget the rollout, then deploy again") from None
    return record


def _lease_of(config_map: dict | None) -> str | None:
    """The live lease holder (None when free or expired)."""
    if config_map is None:
        return None
    value = (config_map["metadata"].get("annotations") or {}).get(LEASE_HOLDER, "")
    holder, _, since = value.rpartition("@")
    if not holder or time.time() - float(since or 0) > LEASE_SECONDS:
        return None
    return holder


def _with_lease(config_map: dict, holder: str) -> dict:
    changed = json.loads(json.dumps(config_map))
    annotations = changed["metadata"].setdefault("annotations", {}) or {}
    if holder:
        annotations[LEASE_HOLDER] = f"{holder}@{time.time():.0f}"
    else:
        annotations.pop(LEASE_HOLDER, None)
    changed["metadata"]["annotations"] = annotations
    return changed


def _released(config_map: dict) -> dict | None:
    """The ConfigMap as it was, lease released (None: delete it, it held no model)."""
    return None if _record_of(config_map).empty else _with_lease(config_map, "")


def _stored(config_map: dict, record: ModelRecord) -> dict | None:
    """The ConfigMap holding `record` with the lease released (None: delete it, the model is gone)."""
    if record.empty:
        return None
    changed = _with_lease(config_map, "")
    routes_before, stored = record.routes_before, replace(record, routes_before=None)
    changed["data"] = {"record": json.dumps(stored.to_dict())}
    annotations = changed["metadata"]["annotations"]
    if routes_before is None:
        annotations.pop(ROUTES_BEFORE, None)
    else:
        annotations[ROUTES_BEFORE] = json.dumps(routes_before, sort_keys=True)
    return changed
