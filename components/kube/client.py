"""A connection to the cluster: kubeconfig (file and context) or the pod's in-cluster config.

Objects are written with server-side apply under the field manager `meshserve`, so applying the
same object twice changes nothing, and a field another manager owns is a conflict, not an
overwrite. Each applied object is read back: an old API server prunes fields its CRD does not
know without an error, and that is reported here. Conflicts on read-modify-write (resourceVersion)
are retried; nothing else is retried silently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from components.deployment.objects import Readiness
from components.errors import InvalidInputError, PlatformError
from components.kube import errors
from components.redaction import register_secret

IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
def request_timeout() -> tuple[float, float]:
    """(connect, read) seconds for one API request: 10 and 45 (a watch's server-side timeout, at most 30 s, fits
    in the read), or both $MESHSERVE_REQUEST_TIMEOUT_S."""
    from components.inputs import REQUEST_TIMEOUT_ENV, seconds_from_env

    chosen = seconds_from_env(REQUEST_TIMEOUT_ENV)
    return (chosen, chosen) if chosen else (10.0, 45.0)


def connect(kubeconfig: str = "", context: str = "") -> Kube:
    """The cluster named by --kubeconfig/--context, $KUBECONFIG, ~/.kube/config, or the pod's own."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    _keep_key_material_in_memory()
    try:
        if not kubeconfig and not context and os.environ.get(IN_CLUSTER_ENV):
            config.load_incluster_config(client_configuration=configuration)
        else:
            # $KUBECONFIG read now: the client reads it once, when it is imported
            config.load_kube_config(config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
                                    context=context or None, client_configuration=configuration)
    except (ConfigException, OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: not YAML, or bad fields
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if context and f"name {context} in" in reason:
            raise InvalidInputError("context", f"the kubeconfig has no context {context!r}",
                                    "pass one that `kubectl config get-contexts` lists") from None
        raise InvalidInputError("kubeconfig", f"no usable cluster configuration ({reason[:200]})",
                                "pass --kubeconfig FILE [--context NAME], or run inside a pod") from None
    configuration.retries = False  # an unreachable server is reported, not retried behind the user's back
    for secret in (*configuration.api_key.values(), configuration.password, configuration.username):
        register_secret(secret)
        register_secret((secret or "").removeprefix("Bearer "))
    if any(not character.isprintable() for value in configuration.api_key.values() for character in value or ""):
        raise InvalidInputError("kubeconfig", "the user's token holds a newline or control character",
                                "fix the token in the kubeconfig (it would inject a request header)")
    api_client = client.ApiClient(configuration)
    api_client.rest_client.request = _bounded(api_client.rest_client.request)
    return Kube(api_client)


def _bounded(request: Callable) -> Callable:
    """The REST client's request with a timeout whenever the caller gave none (the client's default waits
    forever on a server that accepts and never answers)."""
    def call(*args, _request_timeout=None, **kwargs):
        return request(*args, _request_timeout=_request_timeout or request_timeout(), **kwargs)

    return call


def _keep_key_material_in_memory() -> None:
    """The kubeconfig's client-key-data (and certificates) in anonymous memory files, not in /tmp: the Python
    client writes them to temporary files it removes at exit, so a killed command left the private key on
    disk. A memfd is gone with the process, however it ends."""
    from kubernetes.config import kube_config

    def in_memory(content, temp_file_path=None):
        if isinstance(content, str):
            content = content.encode()
        register_secret(content)
        descriptor = os.memfd_create("meshserve-kube-credential", 0)
        os.write(descriptor, content)
        return f"/proc/{os.getpid()}/fd/{descriptor}"

    kube_config._create_temp_file_with_content = in_memory


class Kube:
    """Apply, read, list, delete and wait on objects of any kind the server serves."""

    def __init__(self, api_client):
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        self.api_client = api_client
        self.server = api_client.configuration.host
        self._dynamic = None

    def resource(self, api_version: str, kind: str):
        """The dynamic client's resource for a kind (a missing CRD names its operator)."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self._client().resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise errors.api_not_served(api_version, kind) from None

    def apply(self, obj: dict) -> dict:
        """Server-side apply as `meshserve`; the object as the server keeps it (pruned fields reported)."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        applied = self._call("patch", resource, meta.get("namespace", ""), lambda: resource.server_side_apply(
            body=obj, name=meta["name"], namespace=meta.get("namespace"), field_manager=errors.FIELD_MANAGER),
            obj["kind"], meta["name"])
        kept = applied.to_dict()
        dropped = _missing_paths(obj, kept)
        if dropped:
            raise PlatformError("crd", f"the API server dropped {', '.join(dropped[:3])} from {obj['kind']} "
                                f"{meta['name']}: its schema there does not have them",
                                "install the CRDs meshserve needs (ASM fields need the ASM extension on Istio's CRDs)")
        return kept

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict | None:
        """The object, or None when it does not exist."""
        from kubernetes.dynamic.exceptions import NotFoundError

        resource = self.resource(api_version, kind)
        try:
            return self._call("get", resource, namespace,
                              lambda: resource.get(name=name, namespace=namespace or None), kind, name).to_dict()
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str = "") -> list[dict]:
        """The objects of a kind in a namespace, optionally by label."""
        resource = self.resource(api_version, kind)
        found = self._call("list", resource, namespace,
                           lambda: resource.get(namespace=namespace, label_selector=label_selector), kind, "")
        return found.to_dict().get("items", [])

    def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        """Delete the object; False when it was already gone (or its kind is not even served)."""
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            resource = self._client().resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            return False
        try:
            self._call("delete", resource, namespace,
                       lambda: resource.delete(name=name, namespace=namespace or None), kind, name)
        except NotFoundError:
            return False
        return True

    def replace(self, obj: dict) -> dict:
        """PUT the object as read (with its resourceVersion): a stale read fails with 409."""
        return self._write("update", obj)

    def create(self, obj: dict) -> dict:
        """Create the object (409 when it exists)."""
        return self._write("create", obj)

    def _write(self, verb: str, obj: dict) -> dict:
        resource = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        send = resource.replace if verb == "update" else resource.create
        return self._call(verb, resource, meta.get("namespace", ""),
                          lambda: send(body=obj, namespace=meta.get("namespace")), obj["kind"], meta["name"]).to_dict()

    def wait(self, api_version: str, kind: str, name: str, namespace: str, judge: Callable[[dict], Readiness],
             deadline_s: float) -> dict:
        """Watch the object until `judge` says ready (returned) or failed, or the deadline passes (errors).

        Never hangs: the watch carries the remaining time as its server-side timeout.
        """
        resource = self.resource(api_version, kind)
        deadline = time.monotonic() + deadline_s
        last = Readiness(False, conditions="the object does not exist yet")
        while True:
            current = self.get(api_version, kind, name, namespace)
            if current is not None:
                last = judge(current)
                if last.ready:
                    return current
                if last.failed:
                    raise PlatformError("readiness", f"{kind} {name} failed: {last.failed}",
                                        f"see `kubectl -n {namespace} describe {kind.lower()} {name}`")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PlatformError("readiness", f"{kind} {name} was not ready after {deadline_s:.0f} s; last "
                                    f"conditions: {last.conditions or 'none'}", "raise --ready-timeout or fix the "
                                    "cause the conditions name")
            version = (current or {}).get("metadata", {}).get("resourceVersion")
            self._watch_once(resource, namespace, name, version, min(remaining, 30.0))

    def _watch_once(self, resource, namespace: str, name: str, resource_version: str | None, seconds: float) -> None:
        """Block until the object changes or `seconds` pass (whichever first)."""
        kwargs = {"namespace": namespace, "field_selector": f"metadata.name={name}", "timeout": max(1, int(seconds))}
        if resource_version:
            kwargs["resource_version"] = resource_version
        for _ in self._call("watch", resource, namespace, lambda: resource.watch(**kwargs), resource.kind, name):
            return

    def _client(self):
        if self._dynamic is None:
            from kubernetes import dynamic

            self._dynamic = self._call("get", None, "", lambda: dynamic.DynamicClient(self.api_client), "discovery", "")
        return self._dynamic

    def _call(self, verb: str, resource, namespace: str, action: Callable, kind: str, name: str):
        from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError, ForbiddenError, NotFoundError
        from urllib3.exceptions import HTTPError

        try:
            return action()
        except NotFoundError as exc:
            if verb in ("get", "delete"):
                raise  # the callers that expect it say what a missing object means
            raise errors.refused(verb, kind, name, exc.status, exc.body) from None
        except ForbiddenError as exc:
            plural = f"{resource.name}.{resource.group}" if resource is not None and resource.group else \
                (resource.name if resource is not None else "the API")
            raise errors.forbidden(verb, plural, namespace, exc.body) from None
        except ConflictError as exc:
            if verb == "patch":
                raise errors.conflict(kind, name, exc.body) from None
            raise
        except HTTPError as exc:
            raise errors.unreachable(self.server, errors.transport_detail(exc)) from None
        except DynamicApiError as exc:
            if isinstance(exc, ConflictError):
                raise
            if not exc.status:  # no HTTP answer at all (the client wraps a TLS or socket failure as status 0)
                raise errors.unreachable(self.server, errors.transport_detail(exc)) from None
            raise errors.refused(verb, kind, name, exc.status, exc.body) from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # HTML, truncated JSON, a non-object
            raise errors.garbled(self.server, verb, kind, type(exc).__name__) from None


def _missing_paths(sent, kept, path: str = "") -> list[str]:
    """Paths of `sent` that `kept` lacks (what the server pruned); an empty value the server omits is not one."""
    if isinstance(sent, dict):
        if not isinstance(kept, dict):
            return [path or "(root)"]
        return [p for key, value in sent.items()
                for p in (_missing_paths(value, kept[key], f"{path}.{key}") if key in kept else
                          ([f"{path}.{key}"] if value not in ("", None, [], {}) else []))]
    if isinstance(sent, list) and isinstance(kept, list) and len(sent) == len(kept):
        pairs = enumerate(zip(sent, kept, strict=True))
        return [p for i, (a, b) in pairs for p in _missing_paths(a, b, f"{path}[{i}]")]
    return [] if isinstance(sent, list) == isinstance(kept, list) else [path]
