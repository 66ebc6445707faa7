"""A Kubernetes API for tests: kmock's emulator as a real HTTP server on loopback.

kmock 0.8's emulator stores objects but lacks a few things the official client relies on;
`ClusterEmulator` fills exactly those gaps: label and field selectors on
LIST, PUT (replace) with resourceVersion conflicts, uid/resourceVersion/creationTimestamp/
generation, the core group version, strategic-merge PATCH of named lists, pod logs, and
injected API failures. There are no controllers: a test plays the cluster by setting
`.status`, pods, events and logs through `Cluster`. Every object the code under test sends
is validated with kubernetes-validate.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import functools
import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
from kmock import KubernetesError, KubernetesObjectNotFoundError
from kubernetes_validate import utils as kv

# Versions every sent object must validate against: the oldest we support and the newest known.
VALIDATE_VERSIONS = ("1.30", kv.latest_version())
# kubernetes-validate reads and parses the (large) schema files on every call; read them once.
kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)
NAMESPACE = "models"

RESOURCES = {
    "v1/configmaps": ("ConfigMap", "configmap"),
    "v1/services": ("Service", "service"),
    "v1/pods": ("Pod", "pod"),
    "v1/events": ("Event", "event"),
    "apps/v1/deployments": ("Deployment", "deployment"),
    "networking.k8s.io/v1/ingresses": ("Ingress", "ingress"),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", "networkpolicy"),
    "batch/v1/jobs": ("Job", "job"),
    "autoscaling/v2/horizontalpodautoscalers": (
        "HorizontalPodAutoscaler",
        "horizontalpodautoscaler",
    ),
    "gateway.networking.k8s.io/v1/httproutes": ("HTTPRoute", "httproute"),
}


@dataclass
class Fault:
    """An API failure to answer instead of serving: `times` requests, or forever if None."""

    method: str
    plural: str
    status: int
    message: str
    reason: str = ""
    times: int | None = 1


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lookup(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _matches_labels(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: k=v, k==v, k!=v, k, !k (comma-separated)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _matches_fields(obj: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        actual = _lookup(obj, key)
        actual = "" if actual is None else str(actual)
        if (actual == value) == negate:
            return False
    return True


# Strategic merge: lists of objects merge by these keys (the first one all items have).
_MERGE_KEYS = ("name", "mountPath", "containerPort", "port")


def _merge_key(live: Any, patch: Any) -> str | None:
    if not (isinstance(live, list) and isinstance(patch, list)):
        return None
    items = [*live, *patch]
    for key in _MERGE_KEYS:
        if items and all(isinstance(item, dict) and key in item for item in items):
            return key
    return None


def _merged(live: Any, patch: Any) -> Any:
    """The full strategic-merge result of `patch` over `live` (None deletes a key)."""
    if isinstance(live, dict) and isinstance(patch, dict):
        out = dict(live)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merged(live.get(key), value)
        return out
    key = _merge_key(live, patch)
    if key is not None:
        by_key = {item[key]: item for item in live}
        for item in patch:
            by_key[item[key]] = _merged(by_key.get(item[key]), item)
        return list(by_key.values())
    return patch


def _strategic(live: Any, patch: Any) -> Any:
    """`patch` rewritten so that kmock's JSON merge gives the strategic-merge result: dicts stay
    patches, lists of named objects become the merged list (kmock replaces lists whole)."""
    if isinstance(live, dict) and isinstance(patch, dict):
        return {key: _strategic(live.get(key), value) for key, value in patch.items()}
    if _merge_key(live, patch) is not None:
        return _merged(live, patch)
    return patch


class ClusterEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus what kmock 0.8 misses (see the module docstring)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.faults: list[Fault] = []
        self.logs: dict[tuple[str, str], str] = {}
        self._versions = itertools.count(1000)
        for ref, (kind, singular) in RESOURCES.items():
            self.resources[ref] = kmock.ResourceInfo(
                kind=kind,
                singular=singular,
                namespaced=True,
                verbs={"get", "list", "create", "update", "patch", "delete"},
                subresources={"log"} if ref == "v1/pods" else set(),
            )

    def _next_version(self) -> str:
        return str(next(self._versions))

    def _take_fault(self, request: kmock.Request) -> Fault | None:
        plural = request.resource.plural if request.resource else None
        for fault in self.faults:
            if fault.method == request.method.value and fault.plural == plural:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def stamp_new(self, obj: dict, namespace: str | None) -> None:
        """What the API server adds to every object it creates."""
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["resourceVersion"] = self._next_version()
        meta["generation"] = 1

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is None:
            return await super()._handle(request)
        fault = self._take_fault(request)
        if fault is not None:
            raise KubernetesError(
                status=fault.status,
                reason=fault.reason or {403: "Forbidden", 422: "Invalid"}.get(fault.status),
                message=fault.message,
                details={},
            )
        if request.resource.plural is None and request.method == kmock.method.GET:
            # /api/v1 and /apis/G/V are discovery, not a LIST of some resource.
            return aiohttp.web.json_response(await self._serve_version(request))
        if request.subresource == "log" and request.method == kmock.method.GET:
            return await self._serve_log(request)
        if request.method == kmock.method.PUT and request.name and not request.subresource:
            return await self._serve_replace(request)
        if isinstance(request.data, dict):
            if request.action == kmock.action.CREATE:
                self.stamp_new(request.data, request.namespace)
            elif request.action == kmock.action.UPDATE:
                if "strategic-merge" in request.headers.get("Content-Type", ""):
                    key = (request.resource, request.namespace, request.name)
                    async with self._lock:
                        live: dict = {}
                        if key in self._objects and not self._objects[key].deleted:
                            live = self._objects[key].raw
                    rewritten = _strategic(live, request.data)
                    request.data.clear()
                    request.data.update(rewritten)
                request.data.setdefault("metadata", {})["resourceVersion"] = self._next_version()
        return await super()._handle(request)

    async def _serve_replace(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        assert request.resource is not None and request.name is not None
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                raise KubernetesObjectNotFoundError()
            stored = self._objects[key]
            old = copy.deepcopy(stored.raw)
            new = copy.deepcopy(request.data)
            meta, old_meta = new.setdefault("metadata", {}), old.get("metadata", {})
            sent = meta.get("resourceVersion")
            if sent and sent != old_meta.get("resourceVersion"):
                raise KubernetesError(
                    status=409,
                    reason="Conflict",
                    message=(
                        f"Operation cannot be fulfilled on {request.resource.plural} "
                        f'"{request.name}": the object has been modified; please apply your '
                        "changes to the latest version and try again"
                    ),
                    details={},
                )
            for field in ("uid", "creationTimestamp", "namespace"):
                if field in old_meta:
                    meta[field] = old_meta[field]
            meta["resourceVersion"] = self._next_version()
            generation = old_meta.get("generation", 1)
            meta["generation"] = generation + (new.get("spec") != old.get("spec"))
            if "status" in old:  # status is a subresource: a replace keeps it
                new["status"] = old["status"]
            stored.history.append(new)
            await self._buses[request.resource].put({"type": "MODIFIED", "object": new})
        return aiohttp.web.json_response(new)

    async def _serve_log(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key = (request.resource, request.namespace, request.name)
        if key not in self._objects or self._objects[key].deleted:
            raise KubernetesObjectNotFoundError()
        text = self.logs.get((request.namespace or "", request.name or ""), "")
        tail = request.params.get("tailLines")
        if tail:
            text = "".join(text.splitlines(keepends=True)[-int(tail) :])
        return aiohttp.web.Response(text=text, content_type="text/plain")

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        result: dict = await super()._serve_list(request)  # type: ignore[assignment]
        labels = request.params.get("labelSelector", "")
        fields = request.params.get("fieldSelector", "")
        result["items"] = [
            item
            for item in result["items"]
            if _matches_labels(item.get("metadata", {}).get("labels") or {}, labels)
            and _matches_fields(item, fields)
        ]
        result["metadata"] = {"resourceVersion": self._next_version()}
        return result

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        result: dict = await super()._serve_version(request)  # type: ignore[assignment]
        if result.get("groupVersion", "").startswith("/"):  # the core group is "v1", not "/v1"
            result["groupVersion"] = result["groupVersion"][1:]
        return result


class Cluster:
    """The test's hands on the emulated cluster, run on the server's loop (thread-safe)."""

    def __init__(
        self, emulator: ClusterEmulator, loop: asyncio.AbstractEventLoop, url: str, kubeconfig: Path
    ) -> None:
        self.emulator = emulator
        self.loop = loop
        self.url = url
        self.kubeconfig = kubeconfig
        self.namespace = NAMESPACE
        self._mark = 0

    def _run(self, fn: Any) -> Any:
        async def locked() -> Any:
            async with self.emulator._lock:
                return fn()

        return asyncio.run_coroutine_threadsafe(locked(), self.loop).result(timeout=30)

    def _key(self, ref: str, name: str) -> tuple[Any, str, str]:
        return (kmock.resource(ref), self.namespace, name)

    def get(self, ref: str, name: str) -> dict | None:
        """The stored object, or None when absent."""

        def read() -> dict | None:
            key = self._key(ref, name)
            objs = self.emulator.objects
            if key not in objs or objs[key].deleted:
                return None
            return copy.deepcopy(objs[key].raw)

        return self._run(read)

    def names(self, ref: str) -> set[str]:
        resource = kmock.resource(ref)

        def read() -> set[str]:
            return {
                name
                for (res, _, name), obj in self.emulator.objects.items()
                if res == resource and not obj.deleted
            }

        return self._run(read)

    def set_status(self, ref: str, name: str, status: dict) -> None:
        """What a controller or the kubelet would write."""

        def write() -> None:
            obj = self.emulator.objects[self._key(ref, name)]
            raw = copy.deepcopy(obj.raw)
            raw["status"] = copy.deepcopy(status)
            raw["metadata"]["resourceVersion"] = self.emulator._next_version()
            obj.history.append(raw)

        self._run(write)

    def add(self, ref: str, obj: dict) -> dict:
        """Create an object as the cluster would (pods, events); no validation."""
        obj = copy.deepcopy(obj)
        self.emulator.stamp_new(obj, self.namespace)

        def write() -> None:
            self.emulator.objects[self._key(ref, obj["metadata"]["name"])] = obj

        self._run(write)
        return obj

    def delete(self, ref: str, name: str) -> None:
        self._run(lambda: self.emulator.objects[self._key(ref, name)].delete())

    def set_log(self, pod: str, text: str) -> None:
        self._run(lambda: self.emulator.logs.__setitem__((self.namespace, pod), text))

    def fail(
        self, method: str, plural: str, status: int, message: str, times: int | None = 1
    ) -> None:
        """Answer the next `times` METHOD requests on `plural` with an API error."""
        fault = Fault(method.upper(), plural, status, message, times=times)
        self._run(lambda: self.emulator.faults.append(fault))

    def requests(self) -> list[kmock.Request]:
        """Requests received since this test started."""
        return self._run(lambda: list(self.emulator._requests[self._mark :]))

    def sent_objects(self) -> list[dict]:
        """Bodies of every create and replace since this test started."""
        return [
            r.data
            for r in self.requests()
            if r.method.value in ("POST", "PUT")
            and r.resource is not None
            and isinstance(r.data, dict)
            and "kind" in r.data
        ]

    def reset(self) -> None:
        def clear() -> None:
            self.emulator.objects.clear()
            self.emulator.faults.clear()
            self.emulator.logs.clear()
            self._mark = len(self.emulator._requests)

        self._run(clear)


def validate_object(obj: dict) -> None:
    """Strict schema validation against every version in VALIDATE_VERSIONS; Gateway API
    objects against the Gateway API's schemas (tests/support/gateway_api.py)."""
    if obj.get("apiVersion", "").startswith("gateway.networking.k8s.io/"):
        from tests.support.gateway_api import validate_gateway_object

        validate_gateway_object(obj)
        return
    for version in VALIDATE_VERSIONS:
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            name = obj.get("metadata", {}).get("name")
            raise AssertionError(
                f"{obj['kind']} {name} is invalid for Kubernetes {version} at {path}: {exc.message}"
            ) from None


def write_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: emulator\n  cluster:\n    server: {url}\n"
        "users:\n"
        "- name: tester\n  user:\n    token: test-token\n"
        "contexts:\n"
        f"- name: emulator\n  context:\n    cluster: emulator\n    user: tester\n"
        f"    namespace: {NAMESPACE}\n"
        "current-context: emulator\n"
    )
    return path


@contextlib.contextmanager
def running_cluster(folder: Path) -> Iterator[Cluster]:
    """The emulator serving on a free loopback port in a thread; its kubeconfig in `folder`."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        async with ClusterEmulator() as emulator, kmock.Server(emulator, host="127.0.0.1") as srv:
            state.update(
                emulator=emulator,
                loop=asyncio.get_running_loop(),
                url=str(srv.url).rstrip("/"),
                stop=asyncio.Event(),
            )
            started.set()
            await state["stop"].wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        finally:
            started.set()

    thread = threading.Thread(target=run, name="k8s-emulator", daemon=True)
    thread.start()
    assert started.wait(timeout=60), "the Kubernetes emulator did not start"
    assert "url" in state, "the Kubernetes emulator failed to start"
    kubeconfig = write_kubeconfig(folder / "config", state["url"])
    try:
        yield Cluster(state["emulator"], state["loop"], state["url"], kubeconfig)
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=10)
