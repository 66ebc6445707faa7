"""deployments.manifests: the objects for one deployment, checked without any cluster."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deployments.runtimes.base import Resources, ServingSpec
from deployments.runtimes.kubernetes import manifests

CONFIG = "modelType: joblib\njob: regression\nmodel:\n  method: LOCAL\n  path: /m.joblib\n"


def spec(**kwargs: object) -> ServingSpec:
    values: dict = {
        "name": "iris-prod",
        "model_name": "iris",
        "version": 3,
        "config_yaml": CONFIG,
        "replicas": 2,
    }
    values.update(kwargs)
    return ServingSpec(**values)


def build(s: ServingSpec | None = None, **kwargs: object) -> dict[str, dict]:
    objects = manifests.build_objects(s or spec(), namespace="models", image="img:1", **kwargs)
    return {obj["kind"]: obj for obj in objects}


def container(objects: dict[str, dict]) -> dict:
    return objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_without_ingress_host_there_is_no_ingress() -> None:
    objects = manifests.build_objects(spec(), namespace="models", image="img:1")
    assert [o["kind"] for o in objects] == ["NetworkPolicy", "ConfigMap", "Service", "Deployment"]


Validate = Callable[[dict], None]


def test_every_object_is_valid_and_labelled_as_ours(validate_k8s: Validate) -> None:
    objects = build(
        ingress_host="models.example.com",
        ingress_class="nginx",
        service_account="gcs-reader",
        owner_label_value="prod-console",
    )
    assert set(objects) == {"ConfigMap", "Service", "Deployment", "Ingress", "NetworkPolicy"}
    for obj in objects.values():
        validate_k8s(obj)
        labels = obj["metadata"]["labels"]
        assert obj["metadata"]["namespace"] == "models"
        assert labels[manifests.OWNER_LABEL] == "prod-console"
        assert labels[manifests.DEPLOYMENT_LABEL] == "iris-prod"
        assert labels["app.kubernetes.io/name"] == "model-serving"
        assert labels["app.kubernetes.io/instance"] == "iris-prod"
        assert labels["app.kubernetes.io/version"] == "3"
        assert labels["app.kubernetes.io/managed-by"] == "model-console"


def test_config_map_holds_the_serving_config_verbatim() -> None:
    config_map = build()["ConfigMap"]
    assert config_map["metadata"]["name"] == "iris-prod-config"
    assert config_map["data"] == {"config.yaml": CONFIG}


def test_pods_mount_the_config_and_listen_where_probes_and_service_look() -> None:
    objects = build()
    c = container(objects)
    assert c["command"] == ["python", "-m", "serving"]
    assert c["args"][:2] == ["--config", "/etc/config/config.yaml"]
    assert c["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},  # serving's default grpcPort
    ]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert {"name": "config", "mountPath": "/etc/config", "readOnly": True} in c["volumeMounts"]
    volumes = objects["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": "iris-prod-config"}} in volumes
    service = objects["Service"]["spec"]
    assert [(p["name"], p["targetPort"]) for p in service["ports"]] == [
        ("http", "http"),
        ("grpc", "grpc"),
    ]
    assert service["selector"] == objects["Deployment"]["spec"]["selector"]["matchLabels"]


def test_pods_are_locked_down_with_a_writable_tmp() -> None:
    objects = build()
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    c = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert "serviceAccountName" not in pod


def test_service_account_is_set_when_configured() -> None:
    pod = build(service_account="gcs-reader")["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "gcs-reader"


def test_resources_come_from_the_record() -> None:
    resources = Resources(
        cpu_request="250m", memory_request="512Mi", cpu_limit=None, memory_limit="2Gi"
    )
    assert container(build(spec(resources=resources)))["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    }


def test_rolling_update_never_drops_below_the_desired_replicas() -> None:
    deployment = build()["Deployment"]["spec"]
    assert deployment["replicas"] == 2
    assert deployment["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_a_config_change_changes_the_pod_checksum_and_nothing_else_does() -> None:
    def checksum(s: ServingSpec) -> str:
        template = build(s)["Deployment"]["spec"]["template"]
        return template["metadata"]["annotations"][manifests.CHECKSUM_ANNOTATION]

    assert checksum(spec()) == spec().config_checksum
    assert checksum(spec(replicas=5)) == checksum(spec())
    assert checksum(spec(config_yaml=CONFIG + "inputSize: 4\n")) != checksum(spec())


def test_selector_does_not_depend_on_the_version() -> None:
    """The selector is immutable in Kubernetes: a new version must keep it."""
    old = build(spec(version=3))["Deployment"]["spec"]["selector"]
    new = build(spec(version=4))["Deployment"]["spec"]["selector"]
    assert old == new == {"matchLabels": manifests.selector_labels("iris-prod")}


def test_ingress_routes_a_path_per_deployment_on_the_shared_host() -> None:
    ingress = build(ingress_host="models.example.com", ingress_class="nginx")["Ingress"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "models.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/iris-prod(/|$)(.*)",
            "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": "iris-prod", "port": {"name": "http"}}},
        }
    ]
    assert ingress["metadata"]["annotations"] == manifests.INGRESS_ANNOTATIONS


def test_ingress_class_is_optional() -> None:
    assert "ingressClassName" not in build(ingress_host="h.example.com")["Ingress"]["spec"]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "http://iris-prod.models.svc.cluster.local"),
        ("models.example.com", "http://models.example.com/iris-prod"),
    ],
)
def test_endpoint_is_the_service_or_the_ingress_path(host: str | None, url: str) -> None:
    assert manifests.endpoint_url("iris-prod", "models", host) == url


def test_model_names_become_valid_label_values(validate_k8s: Validate) -> None:
    labels = build(spec(model_name="Iris classifier (v2)!"))["Deployment"]["metadata"]["labels"]
    assert labels[manifests.MODEL_LABEL] == "Iris-classifier--v2"
    validate_k8s(build(spec(model_name="x" * 100))["Deployment"])
