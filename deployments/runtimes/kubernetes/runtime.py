"""The Kubernetes runtime: one ConfigMap, Deployment, Service (and Ingress) per deployment.

Objects come from `manifests.py`; this module sends them (create, or replace what exists,
retrying on conflicts), deletes them, and reads Deployments, pods, events and logs back;
`observe.py` turns what it read into an `Observation` a person can act on, and `client.py`
builds the API client and turns API errors into `RuntimeFailure`.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deployments import constants as st
from deployments.runtimes.base import Observation, Runtime, RuntimeFailure, ServingSpec
from deployments.runtimes.kubernetes import manifests, observe
from deployments.runtimes.kubernetes.client import failure, shared_client

CONFLICT_RETRIES = 5
# Lines of a crashed container's log read to find its error output among access-log lines.
LOG_READ_LINES = 200
MAX_EVENTS = 10
# Kubernetes events already handed to the tasks by this process (see _warning_events).
_REPORTED_EVENTS: OrderedDict[str, None] = OrderedDict()

# kind -> (API class, method suffix); each kind has read/create/replace/delete/list methods.
_KINDS: dict[str, tuple[type, str]] = {
    "ConfigMap": (client.CoreV1Api, "config_map"),
    "Service": (client.CoreV1Api, "service"),
    "Deployment": (client.AppsV1Api, "deployment"),
    "Ingress": (client.NetworkingV1Api, "ingress"),
    "NetworkPolicy": (client.NetworkingV1Api, "network_policy"),
    "HorizontalPodAutoscaler": (client.AutoscalingV2Api, "horizontal_pod_autoscaler"),
    # A custom resource: its calls go through CustomObjectsApi (see _custom_call).
    "HTTPRoute": (client.CustomObjectsApi, "custom_object"),
}
# The objects of one version in traffic (canary, shadow) beside the primary's.
_VERSION_KINDS = ("Service", "ConfigMap", "NetworkPolicy", "Deployment")


class KubernetesRuntime(Runtime):
    """Deployments as Kubernetes objects in one namespace, found again by our owner label."""

    name = "kubernetes"
    reapply_on_sync = True  # apply() is idempotent and repairs drift (e.g. a deleted Service)

    def __init__(
        self,
        namespace: str,
        image: str,
        ingress_host: str | None = None,
        ingress_class: str | None = None,
        service_account: str | None = None,
        api_client: client.ApiClient | None = None,
        *,
        owner_label_value: str = "model-console",
        request_timeout: float = 30.0,
        console_namespace: str | None = None,
        allow_from_namespaces: list[str] | tuple[str, ...] = (),
        gateway: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.image = image
        self.ingress_host = ingress_host or None
        self.ingress_class = ingress_class or None
        self.service_account = service_account or None
        self.owner_label_value = owner_label_value
        self.request_timeout = request_timeout
        # Where the console's pods run: the only pods serving pods take requests from, with
        # the namespaces in `allow_from_namespaces` (an ingress controller, a gateway).
        self.console_namespace = console_namespace or namespace
        self.allow_from_namespaces = tuple(allow_from_namespaces)
        # The Gateway API Gateway ("namespace/name") deployments' HTTPRoutes attach to.
        self.gateway = gateway or None
        self._api_client = api_client

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def api_client(self) -> client.ApiClient:
        # Built on first use so that constructing the runtime never needs a cluster, and shared
        # by the runtimes of one process so that connections are reused across tasks.
        if self._api_client is None:
            self._api_client = shared_client()
        return self._api_client

    def _call(self, kind: str, verb: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """Call e.g. `read_namespaced_deployment`; the answer as plain JSON data (or text)."""
        data = self._request(kind, verb, action, *args, **kwargs)
        try:
            return json.loads(data)
        except ValueError:
            return data

    def _request(self, kind: str, verb: str, action: str, *args: Any, **kwargs: Any) -> str:
        """The API's answer as text, undecoded (a log is text even when a line looks like JSON)."""
        api_class, suffix = _KINDS.get(kind, (client.CoreV1Api, kind))
        if kind == "HTTPRoute":
            method, args = _custom_call(api_class(self.api_client), verb, args)
        else:
            method = getattr(api_class(self.api_client), f"{verb}_namespaced_{suffix}")
        try:
            response = method(
                *args,
                _preload_content=False,
                _request_timeout=(5, self.request_timeout),
                **kwargs,
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise failure(action, exc) from exc
        return response.data.decode("utf-8", "replace")

    def _read(self, kind: str, name: str) -> dict | None:
        try:
            return self._call(kind, "read", f"read {kind} {name}", name, self.namespace)
        except RuntimeFailure as exc:
            if isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 404:
                return None
            raise

    def _list(self, kind: str, label_selector: str | None, **kwargs: Any) -> list[dict]:
        answer = self._call(
            kind,
            "list",
            f"list {kind}s",
            self.namespace,
            label_selector=label_selector or None,
            **kwargs,
        )
        return list(answer.get("items") or [])

    def _owned(self, obj: dict) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return labels.get(manifests.OWNER_LABEL) == self.owner_label_value

    def _options(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "image": self.image,
            "ingress_host": self.ingress_host,
            "ingress_class": self.ingress_class,
            "service_account": self.service_account,
            "owner_label_value": self.owner_label_value,
            "console_namespace": self.console_namespace,
            "allow_from_namespaces": self.allow_from_namespaces,
        }

    def desired_objects(
        self, spec: ServingSpec, ready_roles: frozenset[str] | set[str] = frozenset()
    ) -> list[dict]:
        """The primary's objects (with the HTTPRoute when a Gateway is set)."""
        return manifests.build_objects(
            spec, gateway=self.gateway, ready_roles=ready_roles, **self._options()
        )

    def version_objects(self, spec: ServingSpec) -> list[dict]:
        """The objects of each canary and shadow."""
        return manifests.traffic_objects(spec, **self._options())

    def ready_roles(self, spec: ServingSpec) -> set[str]:
        """The canary and shadow whose pods are ready (a kubelet said so): only those get
        weight or a mirror in the route."""
        ready = set()
        for target in spec.traffic:
            live = self._read("Deployment", manifests.version_name(spec.name, target.version))
            status = (live or {}).get("status") or {}
            if live is not None and int(status.get("readyReplicas") or 0) >= 1:
                ready.add(target.role)
        return ready

    def endpoint(self, name: str) -> str:
        return manifests.endpoint_url(name, self.namespace, self.ingress_host)

    def grpc_endpoint(self, spec: ServingSpec) -> str:
        # The Service's gRPC port, inside the cluster (an Ingress carries only REST).
        return manifests.grpc_address(spec.name, self.namespace)

    # -- Runtime ------------------------------------------------------------------------------

    def apply(self, spec: ServingSpec) -> str:
        """Create or replace each object; an Ingress, HTTPRoute, autoscaler or version no
        longer wanted is removed. The route gives a canary or shadow traffic only once its
        pods are ready; the periodic sync applies again, so it follows them when they are."""
        if spec.traffic and not self.gateway:
            raise RuntimeFailure(st.NO_GATEWAY, permanent=True)
        versions = self.version_objects(spec)
        for obj in versions:
            self._apply_one(obj)
        objects = self.desired_objects(spec, self.ready_roles(spec))
        for obj in objects:
            self._apply_one(obj)
        kinds = {obj["kind"] for obj in objects}
        for kind in ("Ingress", "HorizontalPodAutoscaler", "HTTPRoute"):
            if kind not in kinds and (kind != "HTTPRoute" or self.gateway):
                self._delete_owned(kind, spec.name)
        if self._rolled_out(spec):
            # A version that left the traffic (a promoted canary included) goes only once the
            # primary's pods are all of the current spec and ready: until then the route may
            # still send it requests (the Gateway applies the new route when it gets to it).
            self._remove_versions(spec.name, keep={obj["metadata"]["name"] for obj in versions})
        return self.endpoint(spec.name)

    def _rolled_out(self, spec: ServingSpec) -> bool:
        live = self._read("Deployment", spec.name)
        if live is None:
            return False
        status = live.get("status") or {}
        wanted = (live.get("spec") or {}).get("replicas", spec.replicas)
        generation = (live.get("metadata") or {}).get("generation", 0)
        return (
            int(status.get("observedGeneration") or 0) >= int(generation or 0)
            and int(status.get("updatedReplicas") or 0) >= wanted
            and int(status.get("readyReplicas") or 0) >= wanted
        )

    def _remove_versions(self, name: str, keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """Delete the objects of versions of `name` that left its traffic. They are found by
        their Deployments (one LIST, as the periodic sync applies every deployment), which go
        last, so an interrupted removal is found and finished by the next one."""
        selector = f"{manifests.DEPLOYMENT_LABEL}={name},{manifests.TRAFFIC_ROLE_LABEL}"
        for obj in self._list("Deployment", selector):
            meta = obj.get("metadata") or {}
            labels = meta.get("labels") or {}
            version_name = meta.get("name", "")
            if (
                labels.get(manifests.DEPLOYMENT_LABEL) != name
                or manifests.TRAFFIC_ROLE_LABEL not in labels
                or version_name in keep
                or not self._owned(obj)
            ):
                continue
            for kind in _VERSION_KINDS:
                object_name = (
                    manifests.config_map_name(version_name) if kind == "ConfigMap" else version_name
                )
                self._delete_owned(kind, object_name)

    def version_endpoints(self, spec: ServingSpec) -> dict[int, str]:
        """Each version's own Service (the primary's is the deployment's)."""
        if not spec.traffic:
            return {}
        found = {spec.version: manifests.service_url(spec.name, self.namespace)}
        for target in spec.traffic:
            service = manifests.version_name(spec.name, target.version)
            found[target.version] = manifests.service_url(service, self.namespace)
        return found

    def _apply_one(self, desired: dict) -> None:
        kind, name = desired["kind"], desired["metadata"]["name"]
        for attempt in range(CONFLICT_RETRIES):
            live = self._read(kind, name)
            try:
                if live is None:
                    self._call(kind, "create", f"create {kind} {name}", self.namespace, desired)
                else:
                    if not self._owned(live):
                        raise RuntimeFailure(
                            f"{kind} {name} already exists in namespace {self.namespace} and "
                            f"is not managed by this console (no label "
                            f"{manifests.owner_selector(self.owner_label_value)}); "
                            "choose another deployment name or remove it",
                            permanent=True,
                        )
                    if _contains(live, desired):
                        return  # already as wanted: no write (the periodic sync stays cheap)
                    body = _merge_for_replace(desired, live)
                    self._call(kind, "replace", f"update {kind} {name}", name, self.namespace, body)
                return
            except RuntimeFailure as exc:
                cause = exc.__cause__
                # 409: someone wrote in between (replace) or created it first (create).
                if not (isinstance(cause, ApiException) and cause.status == 409):
                    raise
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def remove(self, name: str) -> None:
        """Delete what we own of `name`; absent objects (404) are success."""
        kinds = ["HorizontalPodAutoscaler", "Ingress"] + (["HTTPRoute"] if self.gateway else [])
        for kind in (*kinds, "Service", "Deployment", "ConfigMap", "NetworkPolicy"):
            object_name = manifests.config_map_name(name) if kind == "ConfigMap" else name
            self._delete_owned(kind, object_name)
        self._remove_versions(name)

    def _delete_owned(self, kind: str, name: str) -> None:
        live = self._read(kind, name)
        if live is None or not self._owned(live):
            return
        try:
            self._call(
                kind,
                "delete",
                f"delete {kind} {name}",
                name,
                self.namespace,
                propagation_policy="Background",
            )
        except RuntimeFailure as exc:
            if not (isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 404):
                raise

    def list_deployed(self) -> set[str]:
        """Names of deployments with any object carrying our owner label."""
        selector = manifests.owner_selector(self.owner_label_value)
        names: set[str] = set()
        for kind in _KINDS:
            if kind == "HTTPRoute" and not self.gateway:
                continue  # the cluster may not have the Gateway API at all
            for obj in self._list(kind, selector):
                labels = obj.get("metadata", {}).get("labels") or {}
                if labels.get(manifests.DEPLOYMENT_LABEL):
                    names.add(labels[manifests.DEPLOYMENT_LABEL])
        return names

    def observe(self, spec: ServingSpec) -> Observation:
        """Replicas ready vs desired, and the first problem a person should read about."""
        endpoint = self.endpoint(spec.name)
        deployment = self._read("Deployment", spec.name)
        if deployment is None or not self._owned(deployment):
            return Observation(
                status=st.STOPPED,
                reason=f"No Deployment {spec.name} in namespace {self.namespace}",
                endpoint=endpoint,
            )
        pods = self._list("pod", _selector(manifests.selector_labels(spec.name)))
        problems = observe.pod_problems(pods, self._log_tail) + observe.deployment_problems(
            deployment
        )
        events = self._warning_events(spec.name, pods)
        return observe.summarize(deployment, problems, events, endpoint)

    # -- reading the cluster ------------------------------------------------------------------

    def logs(self, name: str, tail: int) -> list[str]:
        """The last `tail` lines of each pod of deployment `name`, each line prefixed with
        `[POD] `, pod after pod (oldest first). No pods, no lines."""
        pods = self._list("pod", _selector(manifests.selector_labels(name)))
        pods.sort(
            key=lambda p: (
                p.get("metadata", {}).get("creationTimestamp") or "",
                p.get("metadata", {}).get("name") or "",
            )
        )
        lines: list[str] = []
        for pod in pods:
            pod_name = pod.get("metadata", {}).get("name", "?")
            try:
                text = self._pod_log(pod_name, manifests.CONTAINER_NAME, tail=tail)
            except RuntimeFailure as exc:
                # A pod still being scheduled has no log yet: say so, and show the others.
                lines.append(f"[{pod_name}] (no log: {exc})")
                continue
            lines.extend(f"[{pod_name}] {line}" for line in text.splitlines())
        return lines

    def _pod_log(self, pod_name: str, container: str, *, tail: int, previous: bool = False) -> str:
        return self._request(
            "pod_log",
            "read",
            f"read the log of {pod_name}",
            pod_name,
            self.namespace,
            container=container or None,
            previous=previous,
            tail_lines=tail,
        )

    def _log_tail(self, pod_name: str, container: str) -> str:
        """The end of what the crashed container wrote: its previous run first, else this one."""
        for previous in (True, False):
            try:
                text = self._pod_log(pod_name, container, tail=LOG_READ_LINES, previous=previous)
            except RuntimeFailure:
                continue
            tail = observe.error_tail(text)
            if tail:
                return tail
        return ""

    def _warning_events(self, name: str, pods: list[dict]) -> list[str]:
        """Kubernetes Warning events about the Deployment or its pods not reported before.

        The tasks record every observation's events and the periodic sync observes again and
        again, so each Kubernetes event (one object per repeated occurrence) is reported once
        per worker process.
        """
        involved = {name} | {p.get("metadata", {}).get("name") for p in pods}
        try:
            events = self._list("event", None, field_selector="type=Warning")
        except RuntimeFailure:
            return []  # events are a nicety; never fail an observation for them
        events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        fresh: list[str] = []
        for event in events:
            obj = event.get("involvedObject") or {}
            meta = event.get("metadata") or {}
            key = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
            if obj.get("name") not in involved or key in _REPORTED_EVENTS:
                continue
            _REPORTED_EVENTS[key] = None
            text = f"{event.get('reason')} ({obj.get('kind')} {obj.get('name')}): "
            text += (event.get("message") or "").strip()
            if text not in fresh:
                fresh.append(text)
        while len(_REPORTED_EVENTS) > 5000:
            _REPORTED_EVENTS.popitem(last=False)
        return fresh[-MAX_EVENTS:]


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


def _contains(live: Any, desired: Any) -> bool:
    """Whether `live` already holds every value of `desired` (the API server adds defaults)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and _contains(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return live == desired


def _merge_for_replace(desired: dict, live: dict) -> dict:
    """`desired`, keeping what others legitimately own on the live object.

    Labels and annotations set by controllers or people are kept (ours win), including the
    pod template's (a `kubectl rollout restart` stamp must not roll the pods again on every
    sync); the resourceVersion makes the replace conditional; a Service keeps what the API
    server allocated (cluster IPs are immutable).
    """
    body = json.loads(json.dumps(desired))
    live_meta = live.get("metadata") or {}
    _merge_metadata(body["metadata"], live_meta)
    if live_meta.get("resourceVersion"):
        body["metadata"]["resourceVersion"] = live_meta["resourceVersion"]
    live_spec = live.get("spec") or {}
    if body["kind"] == "Deployment" and "replicas" not in body["spec"] and "replicas" in live_spec:
        # An autoscaler owns the count: replacing must not reset it to the default.
        body["spec"]["replicas"] = live_spec["replicas"]
    if body["kind"] == "Deployment":
        live_template = (live_spec.get("template") or {}).get("metadata") or {}
        _merge_metadata(body["spec"]["template"]["metadata"], live_template)
    if body["kind"] == "Service":
        for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if field in live_spec:
                body["spec"][field] = live_spec[field]
    return body


def _merge_metadata(ours: dict, theirs: dict) -> None:
    for field in ("labels", "annotations"):
        merged = {**(theirs.get(field) or {}), **(ours.get(field) or {})}
        if merged:
            ours[field] = merged


def _custom_call(api: Any, verb: str, args: tuple) -> tuple[Callable[..., Any], tuple]:
    """An HTTPRoute call on CustomObjectsApi, whose arguments start with group, version and
    plural: the same (name, namespace, body) order as the built-in kinds' calls otherwise."""
    where = (manifests.GATEWAY_GROUP, manifests.GATEWAY_VERSION)
    plural = manifests.HTTPROUTE_PLURAL
    if verb == "read":
        name, namespace = args
        return api.get_namespaced_custom_object, (*where, namespace, plural, name)
    if verb == "create":
        namespace, body = args
        return api.create_namespaced_custom_object, (*where, namespace, plural, body)
    if verb == "replace":
        name, namespace, body = args
        return api.replace_namespaced_custom_object, (*where, namespace, plural, name, body)
    if verb == "delete":
        name, namespace = args
        return api.delete_namespaced_custom_object, (*where, namespace, plural, name)
    (namespace,) = args
    return api.list_namespaced_custom_object, (*where, namespace, plural)
