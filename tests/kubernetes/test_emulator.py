"""The emulator's gap fills behave like a real API server, seen through the official client.

If a kmock upgrade changes these behaviours, these tests say so before the runtime tests
fail for a confusing reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deployments.runtimes.kubernetes import load_client

if TYPE_CHECKING:
    from tests.support.kubernetes import Cluster


@pytest.fixture
def core(cluster: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(load_client(str(cluster.kubeconfig)))


def config_map(name: str, **labels: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }


def test_created_objects_get_server_metadata(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("models", config_map("a"))
    assert created.metadata.uid
    assert created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.namespace == "models"


def test_list_honours_label_and_field_selectors(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("models", config_map("a", team="x", tier="web"))
    core.create_namespaced_config_map("models", config_map("b", team="y"))

    def names(**kwargs: str) -> set[str]:
        return {i.metadata.name for i in core.list_namespaced_config_map("models", **kwargs).items}

    assert names(label_selector="team=x") == {"a"}
    assert names(label_selector="team!=x") == {"b"}
    assert names(label_selector="tier") == {"a"}
    assert names(label_selector="!tier") == {"b"}
    assert names(field_selector="metadata.name=b") == {"b"}


def test_replace_is_conditional_on_the_resource_version(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("models", config_map("a"))
    body = config_map("a")
    body["metadata"]["resourceVersion"] = created.metadata.resource_version
    replaced = core.replace_namespaced_config_map("a", "models", body)
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.resource_version != created.metadata.resource_version

    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("a", "models", body)  # the old version again
    assert stale.value.status == 409
    with pytest.raises(ApiException) as absent:
        core.replace_namespaced_config_map("nope", "models", config_map("nope"))
    assert absent.value.status == 404


def test_replace_keeps_the_status(cluster: Cluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_service(
        "models",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]},
        },
    )
    cluster.set_status("v1/services", "s", {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}})
    body = cluster.get("v1/services", "s")
    assert body is not None
    body.pop("status")
    core.replace_namespaced_service("s", "models", body)
    stored = cluster.get("v1/services", "s")
    assert stored is not None
    assert stored["status"] == {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}


def test_core_group_version_is_v1(core: client.CoreV1Api) -> None:
    assert core.get_api_resources().group_version == "v1"


def test_pod_logs_are_served_with_a_tail(cluster: Cluster, core: client.CoreV1Api) -> None:
    cluster.add("v1/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    cluster.set_log("p", "one\ntwo\nthree\n")
    assert core.read_namespaced_pod_log("p", "models", tail_lines=2) == "two\nthree\n"


def test_group_discovery_lists_the_resources(cluster: Cluster) -> None:
    apps = client.AppsV1Api(load_client(str(cluster.kubeconfig))).get_api_resources()
    assert apps.group_version == "apps/v1"
    assert {r.name for r in apps.resources} == {"deployments"}


def test_strategic_merge_patch_merges_named_lists(cluster: Cluster) -> None:
    apps = client.AppsV1Api(load_client(str(cluster.kubeconfig)))
    container = {"name": "serving", "image": "img:1", "env": [{"name": "A", "value": "1"}]}
    sidecar = {"name": "sidecar", "image": "side:1"}
    apps.create_namespaced_deployment(
        "models",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [container, sidecar]},
                },
            },
        },
    )
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "serving", "image": "img:2", "env": [{"name": "B", "value": "2"}]}
                    ]
                }
            }
        }
    }
    apps.patch_namespaced_deployment(
        "d", "models", patch, _content_type="application/strategic-merge-patch+json"
    )

    stored = cluster.get("apps/v1/deployments", "d")
    assert stored is not None
    containers = stored["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {
            "name": "serving",
            "image": "img:2",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        },
        sidecar,
    ]
