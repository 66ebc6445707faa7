"""Kubernetes objects for one deployment, as plain dicts: pure functions, no API calls.

The runtime sends exactly these objects and `charts/model-serving` renders the same ones from
its values (a test compares them), so a model deployed from the console and one deployed the
GitOps way look alike in the cluster.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from deployments.runtimes.base import ServingSpec, TrafficTarget

# Our own labels: the console finds what it owns by OWNER_LABEL, never by name alone.
OWNER_LABEL = "model-console/owner"
DEPLOYMENT_LABEL = "model-console/deployment"
MODEL_LABEL = "model-console/model"
MODEL_VERSION_LABEL = "model-console/model-version"
# canary | shadow on the objects of a version beside the primary (their own Deployment and
# Service, named NAME-vVERSION); the primary's objects have none.
TRAFFIC_ROLE_LABEL = "model-console/traffic-role"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
HTTPROUTE_PLURAL = "httproutes"
CHECKSUM_ANNOTATION = "checksum/config"

APP_NAME = "model-serving"
CONTAINER_NAME = "serving"
CONTAINER_PORT = 8080
SERVICE_PORT = 80
# Where Prometheus's usual pod discovery (the prometheus.io/* annotations) finds serving's
# metrics; the model-serving chart writes the same (values: metrics.podAnnotations).
PROMETHEUS_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(CONTAINER_PORT),
    "prometheus.io/path": "/metrics",
}
GRPC_PORT = 8081  # serving's default grpcPort; the Service exposes the same number
CONFIG_DIR = "/etc/config"
CONFIG_FILE = "config.yaml"
# The serving image's non-root user; numeric so the kubelet can enforce runAsNonRoot.
RUN_AS_USER = 10001
# A pod being replaced keeps serving for DRAIN_SECONDS after it is told to stop, while the
# endpoints controller, kube-proxy and ingresses stop sending it new requests; only then does
# SIGTERM reach serving, which finishes the requests in flight within GRACEFUL_SECONDS.
DRAIN_SECONDS = 5
GRACEFUL_SECONDS = 30
TERMINATION_GRACE_SECONDS = DRAIN_SECONDS + GRACEFUL_SECONDS + 5

# The console's pods (web forwards predictions, the worker checks them), by the chart's labels.
CONSOLE_POD_LABELS = {
    "app.kubernetes.io/name": "console",
    "app.kubernetes.io/part-of": "model-console",
}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
# Serving may reach these on 443 (the artifact store: GCS has no fixed addresses): everything
# but private, link-local and shared ranges, where cluster pods, services and nodes live.
NON_PUBLIC_CIDRS = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
]
# GKE's metadata server, which hands out workload identity tokens (port 988 with Dataplane V2).
METADATA_SERVER = [("169.254.169.254/32", 80), ("169.254.169.252/32", 988)]

# Path-per-deployment routing on one host: /NAME/predict reaches the pod as /predict. The
# rewrite is ingress-nginx's syntax; other controllers need their own equivalent.
INGRESS_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/use-regex": "true",
    "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
}


def label_value(text: str) -> str:
    """`text` made a valid label value (at most 63 of [A-Za-z0-9_.-], alphanumeric ends)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63].strip("-_.")


def config_map_name(name: str) -> str:
    return f"{name}-config"


def ingress_path(name: str) -> str:
    return f"/{name}(/|$)(.*)"


def selector_labels(name: str) -> dict[str, str]:
    """Labels that pick the pods of one deployment; immutable once the Deployment exists."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": name}


def owner_selector(owner_label_value: str = "model-console") -> str:
    """Label selector for everything this console owns in a namespace."""
    return f"{OWNER_LABEL}={owner_label_value}"


def common_labels(spec: ServingSpec, owner_label_value: str = "model-console") -> dict[str, str]:
    """The recommended app.kubernetes.io/* labels plus ours, on every object."""
    return {
        **selector_labels(spec.name),
        "app.kubernetes.io/version": str(spec.version),
        "app.kubernetes.io/component": "serving",
        "app.kubernetes.io/part-of": "model-console",
        "app.kubernetes.io/managed-by": "model-console",
        OWNER_LABEL: owner_label_value,
        DEPLOYMENT_LABEL: spec.name,
        MODEL_LABEL: label_value(spec.model_name),
        MODEL_VERSION_LABEL: str(spec.version),
    }


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local"


def grpc_address(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local:{GRPC_PORT}"


def endpoint_url(name: str, namespace: str, ingress_host: str | None = None) -> str:
    """Where predictions are sent: the ingress path when a host is set, else the Service."""
    if ingress_host:
        return f"http://{ingress_host}/{name}"
    return service_url(name, namespace)


def version_name(name: str, version: int) -> str:
    """The Deployment and Service of one version in a deployment's traffic (canary, shadow)."""
    return f"{name}-v{version}"


def version_spec(spec: ServingSpec, target: TrafficTarget) -> ServingSpec:
    """The spec of a canary's or shadow's own serving pods: the primary's resources and
    replicas (at least one; autoscaling stays with the primary), the version's config."""
    return replace(
        spec,
        name=version_name(spec.name, target.version),
        version=target.version,
        config_yaml=target.config_yaml,
        replicas=max(1, spec.replicas),
        traffic=(),
        autoscaling=None,
    )


def traffic_objects(
    spec: ServingSpec, *, owner_label_value: str = "model-console", **options: Any
) -> list[dict[str, Any]]:
    """NetworkPolicy, ConfigMap, Service and Deployment of each canary and shadow, labelled as
    the deployment's (so they are found and removed with it) and with their role."""
    objects: list[dict[str, Any]] = []
    for target in spec.traffic:
        sub = version_spec(spec, target)
        for obj in build_objects(
            sub, owner_label_value=owner_label_value, **{**options, "ingress_host": None}
        ):
            for meta in _all_metadata(obj):
                meta["labels"][DEPLOYMENT_LABEL] = spec.name
                meta["labels"][TRAFFIC_ROLE_LABEL] = target.role
            objects.append(obj)
    return objects


def _all_metadata(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found = [obj["metadata"]]
    template = obj.get("spec", {}).get("template")
    if template:
        found.append(template["metadata"])
    return found


def build_objects(
    spec: ServingSpec,
    *,
    namespace: str,
    image: str,
    ingress_host: str | None = None,
    ingress_class: str | None = None,
    service_account: str | None = None,
    owner_label_value: str = "model-console",
    console_namespace: str | None = None,
    allow_from_namespaces: list[str] | tuple[str, ...] = (),
    gateway: str | None = None,
    ready_roles: frozenset[str] | set[str] = frozenset(),
) -> list[dict[str, Any]]:
    """NetworkPolicy, ConfigMap, Service, Deployment and (with an ingress host) Ingress, in
    apply order: the policy exists before any pod does. With a Gateway (`namespace/name`) an
    HTTPRoute replaces the Ingress; its canary weight and mirror go to the roles in
    `ready_roles` only. With autoscaling, a HorizontalPodAutoscaler follows the Deployment."""
    labels = common_labels(spec, owner_label_value)
    objects = [
        build_network_policy(
            spec,
            namespace=namespace,
            labels=labels,
            console_namespace=console_namespace or namespace,
            allow_from_namespaces=allow_from_namespaces,
        ),
        build_config_map(spec, namespace=namespace, labels=labels),
        build_service(spec, namespace=namespace, labels=labels),
        build_deployment(
            spec,
            namespace=namespace,
            image=image,
            labels=labels,
            service_account=service_account,
        ),
    ]
    if spec.autoscaling is not None:
        objects.append(build_autoscaler(spec, namespace=namespace, labels=labels))
    if gateway:
        objects.append(
            build_http_route(
                spec,
                namespace=namespace,
                labels=labels,
                gateway=gateway,
                host=ingress_host,
                ready_roles=ready_roles,
            )
        )
    elif ingress_host:
        objects.append(
            build_ingress(
                spec,
                namespace=namespace,
                labels=labels,
                host=ingress_host,
                ingress_class=ingress_class,
            )
        )
    return objects


def _metadata(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def build_network_policy(
    spec: ServingSpec,
    *,
    namespace: str,
    labels: dict[str, str],
    console_namespace: str,
    allow_from_namespaces: list[str] | tuple[str, ...] = (),
) -> dict:
    """Model code is not trusted: its pods take requests only from the console's pods and the
    namespaces named (an ingress controller, a gateway), and reach only DNS, the metadata
    server (workload identity) and port 443 outside the cluster (the artifact store) - never
    the console's database, broker or anything else in the cluster."""
    sources: list[dict[str, Any]] = [
        {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: console_namespace}},
            "podSelector": {"matchLabels": dict(CONSOLE_POD_LABELS)},
        }
    ]
    sources += [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: name}}}
        for name in allow_from_namespaces
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec.name, namespace, labels),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(spec.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": sources, "ports": [{"port": CONTAINER_PORT, "protocol": "TCP"}]}],
            "egress": untrusted_egress(),
        },
    }


def untrusted_egress() -> list[dict[str, Any]]:
    """Where pods running model code may connect: DNS, the metadata server (workload
    identity), and port 443 outside the cluster's ranges (GCS, which has no fixed addresses)."""
    egress: list[dict[str, Any]] = [
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(NON_PUBLIC_CIDRS)}}],
            "ports": [{"port": 443, "protocol": "TCP"}],
        },
    ]
    egress += [
        {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": port, "protocol": "TCP"}]}
        for cidr, port in METADATA_SERVER
    ]
    return egress


def build_config_map(spec: ServingSpec, *, namespace: str, labels: dict[str, str]) -> dict:
    """The serving config file (serving/config.py) mounted at /etc/config/config.yaml."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(config_map_name(spec.name), namespace, labels),
        "data": {CONFIG_FILE: spec.config_yaml},
    }


def build_service(spec: ServingSpec, *, namespace: str, labels: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec.name, namespace, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(spec.name),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
            ],
        },
    }


def container_resources(spec: ServingSpec) -> dict[str, dict[str, str]]:
    """Requests, and the limits that are set."""
    res = spec.resources
    limits = {
        key: value
        for key, value in (("cpu", res.cpu_limit), ("memory", res.memory_limit))
        if value is not None
    }
    out = {"requests": {"cpu": res.cpu_request, "memory": res.memory_request}}
    if limits:
        out["limits"] = limits
    return out


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def build_deployment(
    spec: ServingSpec,
    *,
    namespace: str,
    image: str,
    labels: dict[str, str],
    service_account: str | None = None,
) -> dict:
    """One serving process per pod; a config change rolls the pods through the checksum."""
    pod_spec: dict[str, Any] = {
        # The serving app never talks to the Kubernetes API; GCS access goes through
        # workload identity, which does not need the token mounted.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-m", "serving"],
                "args": [
                    "--config",
                    f"{CONFIG_DIR}/{CONFIG_FILE}",
                    "--host",
                    "0.0.0.0",
                    "--port",
                    str(CONTAINER_PORT),
                    "--graceful-timeout",
                    str(GRACEFUL_SECONDS),
                ],
                "ports": [
                    {"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"},
                    {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                ],
                "env": [{"name": "HOME", "value": "/tmp"}],
                "resources": container_resources(spec),
                # Loading a large artifact can take minutes; liveness waits for startup.
                "startupProbe": _probe("/v2/health/live", period=5, failures=60),
                "livenessProbe": _probe("/v2/health/live", period=10, failures=3),
                "readinessProbe": _probe("/v2/health/ready", period=5, failures=3),
                # The kubelet's own sleep: no binary needed in the image (Kubernetes 1.30+).
                "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
                # A crash's last log lines become its termination message, which the
                # console shows as the deployment's reason.
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name(spec.name)}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    replicas = {} if spec.autoscaling is not None else {"replicas": spec.replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec.name, namespace, labels),
        "spec": {
            # With autoscaling the HorizontalPodAutoscaler owns the replica count.
            **replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": selector_labels(spec.name)},
            # Never below the desired ready replicas while rolling: a new pod takes traffic
            # only once ready (readinessProbe), an old one drains before it stops (preStop).
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {
                        CHECKSUM_ANNOTATION: spec.config_checksum,
                        **PROMETHEUS_ANNOTATIONS,
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def build_ingress(
    spec: ServingSpec,
    *,
    namespace: str,
    labels: dict[str, str],
    host: str,
    ingress_class: str | None = None,
) -> dict:
    """One Ingress per deployment on the shared host, routed by the path /NAME."""
    ingress_spec: dict[str, Any] = {
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": ingress_path(spec.name),
                            "pathType": "ImplementationSpecific",
                            "backend": {"service": {"name": spec.name, "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ]
    }
    if ingress_class:
        ingress_spec = {"ingressClassName": ingress_class, **ingress_spec}
    metadata = _metadata(spec.name, namespace, labels)
    metadata["annotations"] = dict(INGRESS_ANNOTATIONS)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": ingress_spec,
    }


def build_autoscaler(spec: ServingSpec, *, namespace: str, labels: dict[str, str]) -> dict:
    """An autoscaling/v2 HorizontalPodAutoscaler on the Deployment's CPU utilisation (percent
    of the CPU request)."""
    scaling = spec.autoscaling
    assert scaling is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec.name, namespace, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu,
                        },
                    },
                }
            ],
        },
    }


def _service_ref(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"group": "", "kind": "Service", "name": name, "port": SERVICE_PORT}
    if weight is not None:
        ref["weight"] = weight
    return ref


def build_http_route(
    spec: ServingSpec,
    *,
    namespace: str,
    labels: dict[str, str],
    gateway: str,
    host: str | None = None,
    ready_roles: frozenset[str] | set[str] = frozenset(),
) -> dict:
    """The deployment's Gateway API route: /NAME on the Gateway (and host, if any) reaches
    the pods as /, split between the primary's Service and the canary's by weight, and
    mirrored to the shadow's. A canary or shadow whose pods are not ready yet gets nothing:
    its weight stays with the primary (a route to unready pods answers 503)."""
    gateway_namespace, gateway_name = gateway.split("/", 1)
    canary_weight = 0
    backends = []
    filters: list[dict[str, Any]] = [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }
    ]
    for target in spec.traffic:
        if target.role not in ready_roles:
            continue
        service = version_name(spec.name, target.version)
        if target.role == "shadow":
            filters.append(
                {"type": "RequestMirror", "requestMirror": {"backendRef": _service_ref(service)}}
            )
        else:
            canary_weight = target.weight
            backends.append(_service_ref(service, target.weight))
    backends.insert(0, _service_ref(spec.name, 100 - canary_weight))
    route_spec: dict[str, Any] = {
        "parentRefs": [
            {
                "group": GATEWAY_GROUP,
                "kind": "Gateway",
                "namespace": gateway_namespace,
                "name": gateway_name,
            }
        ],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": f"/{spec.name}"}}],
                "filters": filters,
                "backendRefs": backends,
            }
        ],
    }
    if host:
        route_spec = {"hostnames": [host], **route_spec}
    return {
        "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
        "kind": "HTTPRoute",
        "metadata": _metadata(spec.name, namespace, labels),
        "spec": route_spec,
    }
