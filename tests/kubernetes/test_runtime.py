"""KubernetesRuntime against the emulated API server, through the real client and a kubeconfig.

The test plays the cluster's controllers and kubelet: it writes Deployment `.status`, pods,
events and container logs, and checks what the console would show.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deployments.runtimes.base import Resources, RuntimeFailure, ServingSpec
from deployments.runtimes.kubernetes import KubernetesRuntime, load_client, manifests
from deployments.runtimes.kubernetes import client as kubernetes_client

if TYPE_CHECKING:
    from tests.support.kubernetes import Cluster

DEPLOYMENTS = "apps/v1/deployments"
SERVICES = "v1/services"
CONFIGMAPS = "v1/configmaps"
INGRESSES = "networking.k8s.io/v1/ingresses"
PODS = "v1/pods"
EVENTS = "v1/events"
IMAGE = "registry.example.com/model-serving:1.0"


def config_yaml(version: int = 3) -> str:
    return (
        "modelType: joblib\n"
        "job: classification\n"
        "model:\n"
        "  method: GCS\n"
        "  projectName: acme\n"
        "  bucketName: models\n"
        f"  blobDir: models/iris/{version}/model.joblib\n"
        "  sha256: " + "ab" * 32 + "\n"
        "inputSize: 4\n"
        "name: iris\n"
    )


def make_spec(
    name: str = "iris-prod", version: int = 3, replicas: int = 2, **kwargs: object
) -> ServingSpec:
    return ServingSpec(
        name=name,
        model_name="iris",
        version=version,
        config_yaml=config_yaml(version),
        replicas=replicas,
        **kwargs,
    )


@pytest.fixture
def runtime(cluster: Cluster) -> KubernetesRuntime:
    return KubernetesRuntime(
        namespace=cluster.namespace,
        image=IMAGE,
        service_account="model-reader",
        api_client=load_client(str(cluster.kubeconfig)),
    )


def rolled_out(
    cluster: Cluster,
    name: str,
    ready: int,
    *,
    replicas: int | None = None,
    updated: int | None = None,
    conditions: list | None = None,
) -> None:
    """What the Deployment controller writes once it has seen the latest generation."""
    deployment = cluster.get(DEPLOYMENTS, name)
    assert deployment is not None
    desired = deployment["spec"]["replicas"]
    cluster.set_status(
        DEPLOYMENTS,
        name,
        {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": desired if replicas is None else replicas,
            "updatedReplicas": desired if updated is None else updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions or [],
        },
    )


def add_pod(
    cluster: Cluster,
    name: str,
    pod: str,
    *,
    container: dict | None = None,
    conditions: list | None = None,
) -> None:
    """A pod of deployment `name` as the kubelet reports it."""
    status: dict = {"phase": "Pending", "conditions": conditions or []}
    if container is not None:
        status["containerStatuses"] = [
            {"name": "serving", "image": IMAGE, "ready": False, "restartCount": 3, **container}
        ]
    cluster.add(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "labels": manifests.selector_labels(name)},
            "spec": {"containers": [{"name": "serving", "image": IMAGE}]},
            "status": status,
        },
    )


# -- deploy, update, undeploy ----------------------------------------------------------------


def test_deploy_creates_config_deployment_and_service(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    endpoint = runtime.apply(make_spec())

    assert endpoint == "http://iris-prod.models.svc.cluster.local"
    config = cluster.get(CONFIGMAPS, "iris-prod-config")
    assert config is not None and config["data"]["config.yaml"] == config_yaml(3)
    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["labels"][manifests.OWNER_LABEL] == "model-console"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "model-reader"
    assert pod["containers"][0]["image"] == IMAGE
    service = cluster.get(SERVICES, "iris-prod")
    assert service is not None
    assert service["spec"]["selector"] == manifests.selector_labels("iris-prod")
    assert cluster.get(INGRESSES, "iris-prod") is None


def test_deploy_with_an_ingress_host_routes_a_path_per_deployment(cluster: Cluster) -> None:
    runtime = KubernetesRuntime(
        cluster.namespace,
        IMAGE,
        ingress_host="models.example.com",
        ingress_class="nginx",
        api_client=load_client(str(cluster.kubeconfig)),
    )
    assert runtime.apply(make_spec("iris-a")) == "http://models.example.com/iris-a"
    runtime.apply(make_spec("iris-b"))

    paths = {}
    for name in ("iris-a", "iris-b"):
        ingress = cluster.get(INGRESSES, name)
        assert ingress is not None and ingress["spec"]["ingressClassName"] == "nginx"
        rule = ingress["spec"]["rules"][0]
        assert rule["host"] == "models.example.com"
        paths[name] = rule["http"]["paths"][0]["path"]
    assert paths == {"iris-a": "/iris-a(/|$)(.*)", "iris-b": "/iris-b(/|$)(.*)"}


def test_apply_twice_changes_nothing(cluster: Cluster, runtime: KubernetesRuntime) -> None:
    runtime.apply(make_spec())
    before = {
        ref: cluster.get(ref, n) for ref, n in ((DEPLOYMENTS, "iris-prod"), (SERVICES, "iris-prod"))
    }
    runtime.apply(make_spec())

    for (ref, name), old in zip(
        ((DEPLOYMENTS, "iris-prod"), (SERVICES, "iris-prod")), before.values(), strict=True
    ):
        new = cluster.get(ref, name)
        assert new is not None and old is not None
        assert new["metadata"]["uid"] == old["metadata"]["uid"]
        assert new["spec"] == old["spec"]
        assert new["metadata"]["generation"] == old["metadata"]["generation"]
    writes = [r.method.value for r in cluster.requests() if r.method.value in ("POST", "PUT")]
    # NetworkPolicy, ConfigMap, Service, Deployment; the second apply writes nothing
    assert writes == ["POST"] * 4


def test_fields_the_api_server_defaults_do_not_cause_writes(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    runtime.apply(make_spec())
    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    pod.update(dnsPolicy="ClusterFirst", restartPolicy="Always", schedulerName="default-scheduler")
    pod["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    cluster.add(DEPLOYMENTS, deployment)
    before = len(cluster.requests())

    runtime.apply(make_spec())

    # 4 reads, the Ingress, the autoscaler (none wanted: is there one to remove?) and the
    # Deployment's rollout (not rolled out here, so no list of canary or shadow objects to
    # remove yet): no write.
    assert [r.method.value for r in cluster.requests()[before:]] == ["GET"] * 7


def test_update_of_replicas_and_version_rolls_the_deployment(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    runtime.apply(make_spec(version=3, replicas=2))
    old = cluster.get(DEPLOYMENTS, "iris-prod")
    assert old is not None

    runtime.apply(make_spec(version=4, replicas=3))

    new = cluster.get(DEPLOYMENTS, "iris-prod")
    assert new is not None
    assert new["spec"]["replicas"] == 3
    assert new["metadata"]["generation"] == old["metadata"]["generation"] + 1
    checksum = manifests.CHECKSUM_ANNOTATION
    old_sum = old["spec"]["template"]["metadata"]["annotations"][checksum]
    new_sum = new["spec"]["template"]["metadata"]["annotations"][checksum]
    assert old_sum != new_sum == make_spec(version=4).config_checksum
    assert new["spec"]["template"]["metadata"]["labels"][manifests.MODEL_VERSION_LABEL] == "4"
    config = cluster.get(CONFIGMAPS, "iris-prod-config")
    assert config is not None and "models/iris/4/model.joblib" in config["data"]["config.yaml"]


def test_rollback_is_applying_the_previous_version_again(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    runtime.apply(make_spec(version=3))
    first = cluster.get(DEPLOYMENTS, "iris-prod")
    runtime.apply(make_spec(version=4))
    runtime.apply(make_spec(version=3))

    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    assert deployment is not None and first is not None
    assert deployment["spec"]["template"] == first["spec"]["template"]
    config = cluster.get(CONFIGMAPS, "iris-prod-config")
    assert config is not None and config["data"]["config.yaml"] == config_yaml(3)


def test_update_keeps_what_others_own(cluster: Cluster, runtime: KubernetesRuntime) -> None:
    runtime.apply(make_spec())
    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    service = cluster.get(SERVICES, "iris-prod")
    assert deployment is not None and service is not None
    deployment["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    restarted = {"kubectl.kubernetes.io/restartedAt": "2026-11-26T10:00:00Z"}
    deployment["spec"]["template"]["metadata"]["annotations"].update(restarted)
    service["spec"]["clusterIP"] = "10.0.0.12"
    service["spec"]["clusterIPs"] = ["10.0.0.12"]
    service["spec"]["ipFamilies"] = ["IPv4"]
    cluster.add(DEPLOYMENTS, deployment)
    cluster.add(SERVICES, service)

    runtime.apply(make_spec(replicas=5))

    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    service = cluster.get(SERVICES, "iris-prod")
    assert deployment is not None and service is not None
    assert deployment["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        **restarted,
        manifests.CHECKSUM_ANNOTATION: make_spec().config_checksum,
        **manifests.PROMETHEUS_ANNOTATIONS,
    }
    assert service["spec"]["clusterIP"] == "10.0.0.12"
    assert service["spec"]["ipFamilies"] == ["IPv4"]


def test_undeploy_removes_everything_and_is_idempotent(cluster: Cluster) -> None:
    runtime = KubernetesRuntime(
        cluster.namespace,
        IMAGE,
        ingress_host="models.example.com",
        api_client=load_client(str(cluster.kubeconfig)),
    )
    runtime.apply(make_spec())
    assert runtime.list_deployed() == {"iris-prod"}

    runtime.remove("iris-prod")
    runtime.remove("iris-prod")

    for ref in (DEPLOYMENTS, SERVICES, CONFIGMAPS, INGRESSES):
        assert cluster.names(ref) == set()
    assert runtime.list_deployed() == set()
    assert runtime.observe(make_spec()).status == "stopped"


def test_dropping_the_ingress_host_removes_the_ingress(cluster: Cluster) -> None:
    client = load_client(str(cluster.kubeconfig))
    KubernetesRuntime(
        cluster.namespace, IMAGE, ingress_host="models.example.com", api_client=client
    ).apply(make_spec())
    endpoint = KubernetesRuntime(cluster.namespace, IMAGE, api_client=client).apply(make_spec())
    assert cluster.get(INGRESSES, "iris-prod") is None
    assert endpoint == "http://iris-prod.models.svc.cluster.local"


def test_objects_not_owned_are_neither_taken_over_nor_deleted(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    cluster.add(
        SERVICES,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "billing", "labels": {"team": "billing"}},
            "spec": {"ports": [{"port": 80}]},
        },
    )

    with pytest.raises(RuntimeFailure) as failure:
        runtime.apply(make_spec("billing"))
    assert failure.value.permanent
    assert "Service billing already exists" in str(failure.value)

    runtime.remove("billing")
    assert cluster.get(SERVICES, "billing") is not None
    assert "billing" not in runtime.list_deployed()


def test_list_deployed_sees_only_this_consoles_objects(cluster: Cluster) -> None:
    client = load_client(str(cluster.kubeconfig))
    ours = KubernetesRuntime(cluster.namespace, IMAGE, api_client=client)
    theirs = KubernetesRuntime(
        cluster.namespace, IMAGE, api_client=client, owner_label_value="staging-console"
    )
    ours.apply(make_spec("iris-prod"))
    theirs.apply(make_spec("iris-staging"))
    cluster.delete(DEPLOYMENTS, "iris-prod")  # a half-removed deployment still counts

    assert ours.list_deployed() == {"iris-prod"}
    assert theirs.list_deployed() == {"iris-staging"}


def test_drift_is_repaired_by_applying_again(cluster: Cluster, runtime: KubernetesRuntime) -> None:
    runtime.apply(make_spec(replicas=2))
    cluster.delete(SERVICES, "iris-prod")
    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    assert deployment is not None
    deployment["spec"]["replicas"] = 7  # someone scaled it by hand
    cluster.add(DEPLOYMENTS, deployment)

    assert runtime.reapply_on_sync
    runtime.apply(make_spec(replicas=2))

    assert cluster.get(SERVICES, "iris-prod") is not None
    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    assert deployment is not None and deployment["spec"]["replicas"] == 2


# -- status from the cluster ------------------------------------------------------------------


def test_status_follows_the_rollout(cluster: Cluster, runtime: KubernetesRuntime) -> None:
    spec = make_spec(replicas=2)
    runtime.apply(spec)

    seen = runtime.observe(spec)
    assert (seen.status, seen.replicas_ready) == ("deploying", 0)
    assert seen.endpoint == "http://iris-prod.models.svc.cluster.local"

    rolled_out(cluster, "iris-prod", ready=1)
    seen = runtime.observe(spec)
    assert (seen.status, seen.reason) == ("degraded", "1/2 replicas ready")

    rolled_out(cluster, "iris-prod", ready=2)
    seen = runtime.observe(spec)
    assert (seen.status, seen.reason, seen.replicas_ready) == ("running", "2/2 replicas ready", 2)

    runtime.apply(make_spec(version=4, replicas=2))  # a new generation: rolling again
    seen = runtime.observe(make_spec(version=4, replicas=2))
    assert seen.status == "deploying" and seen.replicas_ready == 2


def test_crash_loop_shows_the_tail_of_the_container_log(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=1)
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=0)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-7d9f-abcde",
        container={
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 40s restarting failed container",
                }
            },
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
        },
    )
    cluster.set_log(
        "iris-prod-7d9f-abcde",
        "INFO starting\nerror: artifact sha256 mismatch: expected abab, got 1234\n",
    )
    cluster.add(
        EVENTS,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "type": "Warning",
            "reason": "BackOff",
            "metadata": {"name": "iris-prod-7d9f-abcde.1"},
            "involvedObject": {"kind": "Pod", "name": "iris-prod-7d9f-abcde"},
            "message": "Back-off restarting failed container serving",
        },
    )

    seen = runtime.observe(spec)

    assert seen.status == "failed"
    assert seen.reason.startswith("CrashLoopBackOff: container serving of pod iris-prod-7d9f-abcde")
    assert "exit code 1" in seen.reason
    assert "error: artifact sha256 mismatch: expected abab, got 1234" in seen.reason
    assert seen.reason.endswith("(0/1 replicas ready)")
    assert seen.events == [
        "BackOff (Pod iris-prod-7d9f-abcde): Back-off restarting failed container serving"
    ]
    # The periodic sync observes again: the same Kubernetes event is not reported twice.
    again = runtime.observe(spec)
    assert again.events == [] and again.reason == seen.reason


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull"])
def test_image_that_cannot_be_pulled_fails_the_deployment(
    cluster: Cluster, runtime: KubernetesRuntime, reason: str
) -> None:
    spec = make_spec(replicas=1)
    runtime.apply(spec)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-1",
        container={
            "state": {
                "waiting": {
                    "reason": reason,
                    "message": f'Back-off pulling image "{IMAGE}": not found',
                }
            }
        },
    )

    seen = runtime.observe(spec)

    assert seen.status == "failed"
    assert seen.reason.startswith(f"{reason}: image {IMAGE} cannot be pulled")
    assert "not found" in seen.reason


def test_out_of_memory_is_reported_as_oomkilled(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=2, resources=Resources(memory_limit="512Mi"))
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=1)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-1",
        container={
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
        },
    )

    seen = runtime.observe(spec)

    assert seen.status == "degraded"  # one replica still serves
    assert seen.reason.startswith("OOMKilled: container serving of pod iris-prod-1 ran out of")
    assert seen.reason.endswith("(1/2 replicas ready)")


def test_a_container_that_recovered_is_not_a_problem(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=1)
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=1)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-1",
        container={
            "ready": True,
            "state": {"running": {"startedAt": "2026-11-26T10:00:00Z"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
        },
    )
    seen = runtime.observe(spec)
    assert (seen.status, seen.reason) == ("running", "1/1 replicas ready")


def test_unschedulable_pod_names_the_missing_resource(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=1, resources=Resources(cpu_request="64"))
    runtime.apply(spec)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-1",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
            }
        ],
    )

    seen = runtime.observe(spec)

    assert seen.status == "failed"
    assert seen.reason == (
        "Unschedulable: pod iris-prod-1 fits on no node: 0/3 nodes are "
        "available: 3 Insufficient cpu. (0/1 replicas ready)"
    )


def test_progress_deadline_exceeded_fails_the_rollout(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=1)
    runtime.apply(spec)
    rolled_out(
        cluster,
        "iris-prod",
        ready=0,
        updated=0,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "iris-prod-7d9f" has timed out progressing.',
            }
        ],
    )

    seen = runtime.observe(spec)

    assert seen.status == "failed"
    assert seen.reason.startswith("ProgressDeadlineExceeded: the rollout made no progress")
    assert 'ReplicaSet "iris-prod-7d9f" has timed out progressing.' in seen.reason


def test_stuck_update_with_old_replicas_serving_is_degraded(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    runtime.apply(make_spec(version=3, replicas=2))
    rolled_out(cluster, "iris-prod", ready=2)
    spec = make_spec(version=4, replicas=2)
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=2, replicas=3, updated=1)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-new-1",
        container={
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "manifest unknown"}}
        },
    )

    seen = runtime.observe(spec)

    assert seen.status == "degraded" and seen.replicas_ready == 2
    assert seen.reason.startswith("ImagePullBackOff")


def test_observing_a_missing_deployment_says_so(runtime: KubernetesRuntime) -> None:
    seen = runtime.observe(make_spec())
    assert seen.status == "stopped"
    assert seen.reason == "No Deployment iris-prod in namespace models"


# -- API errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 422])
def test_refusals_are_permanent_failures_with_the_api_message(
    cluster: Cluster, runtime: KubernetesRuntime, status: int
) -> None:
    message = (
        'deployments.apps is forbidden: User "system:serviceaccount:console:worker" '
        'cannot create resource "deployments"'
    )
    cluster.fail("POST", "deployments", status, message)

    with pytest.raises(RuntimeFailure) as failure:
        runtime.apply(make_spec())

    assert failure.value.permanent
    assert str(failure.value) == (
        f"Kubernetes API refused to create Deployment iris-prod: {status} {message}"
    )


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_can_be_retried(
    cluster: Cluster, runtime: KubernetesRuntime, status: int
) -> None:
    cluster.fail("POST", "services", status, "etcdserver: request timed out")
    with pytest.raises(RuntimeFailure) as failure:
        runtime.apply(make_spec())
    assert not failure.value.permanent
    assert "etcdserver: request timed out" in str(failure.value)

    runtime.apply(make_spec())  # the retry succeeds
    assert cluster.get(SERVICES, "iris-prod") is not None


def test_conflicting_writes_are_retried(cluster: Cluster, runtime: KubernetesRuntime) -> None:
    runtime.apply(make_spec(replicas=1))
    cluster.fail("PUT", "deployments", 409, "the object has been modified", times=2)

    runtime.apply(make_spec(replicas=4))

    deployment = cluster.get(DEPLOYMENTS, "iris-prod")
    assert deployment is not None and deployment["spec"]["replicas"] == 4


def test_endless_conflicts_are_a_transient_failure(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    runtime.apply(make_spec(replicas=1))
    cluster.fail("PUT", "deployments", 409, "the object has been modified", times=None)

    with pytest.raises(RuntimeFailure) as failure:
        runtime.apply(make_spec(replicas=4))
    assert not failure.value.permanent
    assert "409 the object has been modified" in str(failure.value)


def test_unreachable_api_is_a_transient_failure(
    tmp_path: Path, kubeconfig_writer: Callable[[Path, str], Path]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = kubeconfig_writer(tmp_path / "config", f"http://127.0.0.1:{port}")
    client = load_client(str(kubeconfig))
    client.configuration.retries = 0
    runtime = KubernetesRuntime("models", IMAGE, api_client=client, request_timeout=2)

    with pytest.raises(RuntimeFailure) as failure:
        runtime.apply(make_spec())
    assert not failure.value.permanent
    assert "unreachable" in str(failure.value)


# -- configuration ----------------------------------------------------------------------------


def test_kubeconfig_is_found_through_the_environment(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setattr(kubernetes_client, "_SHARED_CLIENT", [])
    runtime = KubernetesRuntime(cluster.namespace, IMAGE)  # no client: configured on first use
    runtime.apply(make_spec())
    assert runtime.list_deployed() == {"iris-prod"}
    # Later runtimes of the same process (one per task) share the client and its connections.
    assert KubernetesRuntime(cluster.namespace, IMAGE).api_client is runtime.api_client


def test_missing_configuration_is_a_permanent_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setattr(kubernetes_client, "_SHARED_CLIENT", [])
    runtime = KubernetesRuntime("models", IMAGE)
    with pytest.raises(RuntimeFailure) as failure:
        runtime.list_deployed()
    assert failure.value.permanent
    assert "No usable Kubernetes configuration" in str(failure.value)
