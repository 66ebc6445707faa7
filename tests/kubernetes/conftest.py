"""Kubernetes fixtures: one emulated cluster (tests/support/kubernetes.py) for the session,
emptied before each test; every object a test's code sent must validate afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.kubernetes import Cluster, running_cluster, validate_object, write_kubeconfig


@pytest.fixture(scope="session")
def emulated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


@pytest.fixture
def validate_k8s() -> Callable[[dict], None]:
    """validate_object(obj): strict kubernetes-validate against VALIDATE_VERSIONS."""
    return validate_object


@pytest.fixture
def kubeconfig_writer() -> Callable[[Path, str], Path]:
    """write_kubeconfig(path, server_url), for tests that need a cluster of their own."""
    return write_kubeconfig


@pytest.fixture
def cluster(emulated_cluster: Cluster) -> Iterator[Cluster]:
    """An empty cluster per test; afterwards, every object the test's code sent must validate."""
    emulated_cluster.reset()
    yield emulated_cluster
    for obj in emulated_cluster.sent_objects():
        validate_object(obj)
