"""Traffic on Kubernetes, against the emulated API server: one Deployment and Service per version
in traffic, a Gateway API HTTPRoute that splits and mirrors (weight only to ready pods), and a
HorizontalPodAutoscaler; every object sent validates (the cluster fixture checks them all,
HTTPRoutes against the Gateway API's schemas)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest

from deployments import constants as st
from deployments.runtimes.base import Autoscaling, RuntimeFailure, TrafficTarget
from deployments.runtimes.kubernetes import KubernetesRuntime, load_client, manifests
from tests.kubernetes.test_runtime import CONFIGMAPS, DEPLOYMENTS, IMAGE, SERVICES, config_yaml
from tests.kubernetes.test_runtime import make_spec as base_spec
from tests.support.gateway_api import VENDORED_CRD, validate_gateway_object

if TYPE_CHECKING:
    from tests.support.kubernetes import Cluster

ROUTES = "gateway.networking.k8s.io/v1/httproutes"
AUTOSCALERS = "autoscaling/v2/horizontalpodautoscalers"
NETWORK_POLICIES = "networking.k8s.io/v1/networkpolicies"
GATEWAY = "infra/shared-gateway"


def make_spec(*traffic: TrafficTarget, **kwargs: object):  # noqa: ANN201 - a ServingSpec
    return base_spec(traffic=tuple(traffic), **kwargs)


def canary(version: int = 4, weight: int = 30) -> TrafficTarget:
    return TrafficTarget("canary", version, config_yaml(version), weight)


def shadow(version: int = 5) -> TrafficTarget:
    return TrafficTarget("shadow", version, config_yaml(version))


def _runtime(cluster: Cluster, gateway: str | None = GATEWAY) -> KubernetesRuntime:
    return KubernetesRuntime(
        namespace=cluster.namespace,
        image=IMAGE,
        api_client=load_client(str(cluster.kubeconfig)),
        ingress_host="models.example.com",
        gateway=gateway,
    )


def _pods_ready(cluster: Cluster, name: str) -> None:
    """What the Deployment controller writes once the kubelet reports the pods ready."""
    live = cluster.get(DEPLOYMENTS, name)
    assert live is not None
    replicas = live["spec"].get("replicas", 1)
    cluster.set_status(
        DEPLOYMENTS,
        name,
        {
            "observedGeneration": live["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    )


def _rule(cluster: Cluster) -> dict:
    route = cluster.get(ROUTES, "iris-prod")
    assert route is not None
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": "infra",
            "name": "shared-gateway",
        }
    ]
    assert route["spec"]["hostnames"] == ["models.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/iris-prod"}}]
    return rule


def _weights(rule: dict) -> dict[str, int]:
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def _mirrors(rule: dict) -> list[str]:
    return [
        f["requestMirror"]["backendRef"]["name"]
        for f in rule["filters"]
        if f["type"] == "RequestMirror"
    ]


def test_route_and_version_objects_follow_the_traffic(cluster: Cluster) -> None:
    runtime = _runtime(cluster)
    endpoint = runtime.apply(make_spec())
    assert endpoint == "http://models.example.com/iris-prod"
    # With a Gateway the route replaces the Ingress.
    assert cluster.names("networking.k8s.io/v1/ingresses") == set()
    assert _weights(_rule(cluster)) == {"iris-prod": 100}

    # A canary and a shadow: their own Deployment, Service, ConfigMap and NetworkPolicy...
    spec = make_spec(canary(), shadow())
    runtime.apply(spec)
    for ref in (DEPLOYMENTS, SERVICES, NETWORK_POLICIES):
        assert cluster.names(ref) == {"iris-prod", "iris-prod-v4", "iris-prod-v5"}
    assert cluster.names(CONFIGMAPS) == {
        "iris-prod-config",
        "iris-prod-v4-config",
        "iris-prod-v5-config",
    }
    service = cluster.get(SERVICES, "iris-prod-v4")
    assert service["spec"]["selector"] == manifests.selector_labels("iris-prod-v4")
    assert service["metadata"]["labels"][manifests.DEPLOYMENT_LABEL] == "iris-prod"
    assert service["metadata"]["labels"][manifests.TRAFFIC_ROLE_LABEL] == "canary"
    # ...but no traffic before their pods are ready: the primary keeps all of it.
    assert _weights(_rule(cluster)) == {"iris-prod": 100}
    assert _mirrors(_rule(cluster)) == []
    assert runtime.list_deployed() == {"iris-prod"}  # the versions belong to the deployment

    _pods_ready(cluster, "iris-prod-v4")
    runtime.apply(spec)
    assert _weights(_rule(cluster)) == {"iris-prod": 70, "iris-prod-v4": 30}
    assert _mirrors(_rule(cluster)) == []
    _pods_ready(cluster, "iris-prod-v5")
    runtime.apply(spec)
    assert _mirrors(_rule(cluster)) == ["iris-prod-v5"]

    # A new weight updates the route in place.
    runtime.apply(make_spec(canary(weight=50), shadow()))
    assert _weights(_rule(cluster)) == {"iris-prod": 50, "iris-prod-v4": 50}

    # The canary ends: its objects go once the primary's pods are rolled out and ready (until
    # then the Gateway may still route to it), the shadow stays.
    runtime.apply(make_spec(shadow()))
    assert cluster.names(DEPLOYMENTS) == {"iris-prod", "iris-prod-v4", "iris-prod-v5"}
    _pods_ready(cluster, "iris-prod")
    runtime.apply(make_spec(shadow()))
    assert cluster.names(DEPLOYMENTS) == {"iris-prod", "iris-prod-v5"}
    assert cluster.names(SERVICES) == {"iris-prod", "iris-prod-v5"}
    assert cluster.names(CONFIGMAPS) == {"iris-prod-config", "iris-prod-v5-config"}
    assert _weights(_rule(cluster)) == {"iris-prod": 100}
    assert _mirrors(_rule(cluster)) == ["iris-prod-v5"]

    # No traffic beside the primary: the route alone, then removing everything.
    runtime.apply(make_spec())
    assert cluster.names(DEPLOYMENTS) == {"iris-prod"}
    assert _mirrors(_rule(cluster)) == []
    runtime.remove("iris-prod")
    for ref in (DEPLOYMENTS, SERVICES, CONFIGMAPS, ROUTES):
        assert cluster.names(ref) == set()


def test_canary_without_a_gateway_is_refused_before_anything_is_created(
    cluster: Cluster,
) -> None:
    runtime = _runtime(cluster, gateway=None)
    with pytest.raises(RuntimeFailure) as refused:
        runtime.apply(make_spec(canary()))
    assert refused.value.permanent
    assert str(refused.value) == st.NO_GATEWAY
    assert cluster.names(DEPLOYMENTS) == set()


def test_autoscaling_writes_an_hpa_that_owns_the_replicas(cluster: Cluster) -> None:
    runtime = _runtime(cluster)
    scaled = make_spec(autoscaling=Autoscaling(min_replicas=2, max_replicas=6, target_cpu=60))
    runtime.apply(scaled)
    hpa = cluster.get(AUTOSCALERS, "iris-prod")
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris-prod",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    target = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert target == {"type": "Utilization", "averageUtilization": 60}
    assert "replicas" not in cluster.get(DEPLOYMENTS, "iris-prod")["spec"]

    # The autoscaler scales to 5; applying again (the periodic sync) keeps its choice.
    live = cluster.get(DEPLOYMENTS, "iris-prod")
    live["spec"]["replicas"] = 5
    cluster.add(DEPLOYMENTS, live)
    runtime.apply(make_spec(autoscaling=Autoscaling(min_replicas=2, max_replicas=8, target_cpu=60)))
    assert cluster.get(DEPLOYMENTS, "iris-prod")["spec"]["replicas"] == 5
    assert cluster.get(AUTOSCALERS, "iris-prod")["spec"]["maxReplicas"] == 8

    # Autoscaling off: the HPA goes and the record's replicas count again.
    runtime.apply(make_spec(replicas=3))
    assert cluster.names(AUTOSCALERS) == set()
    assert cluster.get(DEPLOYMENTS, "iris-prod")["spec"]["replicas"] == 3


def test_the_route_check_is_the_release_crd_and_refuses_a_broken_route() -> None:
    """The routes above are checked against the vendored v1.6.1 HTTPRoute CRD: a route with a
    negative weight or a mirror without a backend is refused, naming where."""
    spec = make_spec(canary(), shadow())
    (route,) = [
        obj
        for obj in manifests.build_objects(
            spec,
            namespace="models",
            image=IMAGE,
            ingress_host="models.example.com",
            gateway=GATEWAY,
            ready_roles={"canary", "shadow"},
        )
        if obj["kind"] == "HTTPRoute"
    ]
    validate_gateway_object(route)
    assert "v1.6.1" in str(VENDORED_CRD)

    (rule,) = route["spec"]["rules"]
    negative = copy.deepcopy(route)
    negative["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1
    with pytest.raises(AssertionError, match=r"rules\.0\.backendRefs\.0\.weight"):
        validate_gateway_object(negative)
    mirrors = [i for i, f in enumerate(rule["filters"]) if f["type"] == "RequestMirror"]
    no_backend = copy.deepcopy(route)
    del no_backend["spec"]["rules"][0]["filters"][mirrors[0]]["requestMirror"]["backendRef"]
    with pytest.raises(AssertionError, match="backendRef"):
        validate_gateway_object(no_backend)
