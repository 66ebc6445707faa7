"""A live console with VALIDATION_RUNTIME=kubernetes: an upload through the API is validated by
a Job (the test plays the kubelet, see test_validation_job.py), never in the web process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from tests.kubernetes.test_validation_job import (
    BUCKET,
    IMAGE,
    JOBS,
    Kubelet,
    image_files,
    quarantined,
)
from tests.support.api import create_model, upload
from tests.support.gcs import GcsEmulator
from tests.support.stack import ConsoleStack

if TYPE_CHECKING:
    from tests.support.kubernetes import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def web(
    emulated_cluster: Cluster, gcs: GcsEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleStack]:
    """The console's web process only: uploads are validated within the request."""
    gcs.ensure_bucket(BUCKET)
    stack = ConsoleStack(
        Path(tmp_path_factory.mktemp("console-k8s-validation")),
        {
            "VALIDATION_RUNTIME": "kubernetes",
            "KUBECONFIG": str(emulated_cluster.kubeconfig),
            "K8S_NAMESPACE": emulated_cluster.namespace,
            "SERVING_IMAGE": IMAGE,
            "K8S_VALIDATION_SERVICE_ACCOUNT": "model-reader",
            "ARTIFACT_STORE": f"gs://{BUCKET}/console",
            "GCS_PROJECT": "test",
            "STORAGE_EMULATOR_HOST": gcs.url,
        },
    )
    try:
        stack.prepare()
        stack.start_web()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def kubelet(
    cluster: Cluster, gcs: GcsEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kubelet]:
    root = tmp_path_factory.mktemp("kubelet")
    with Kubelet(cluster, image_files(root / "image"), root / "pods", gcs.url) as player:
        yield player


def _model(path: Path, estimator: object) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    joblib.dump(estimator.fit(x, (x[:, 1] > 0).astype(int)), path)  # type: ignore[attr-defined]
    return path


def test_an_upload_is_validated_by_a_job_and_recorded(
    web: ConsoleStack, cluster: Cluster, kubelet: Kubelet, gcs: GcsEmulator, tmp_path: Path
) -> None:
    """Registered without its width, uploaded with a sample CSV: the Job learns both."""
    client = web.client("deployer")
    create_model(client, "k8s-validated", "classification", None)
    sample = b"age,height,weight,score\n31,1.8,70.5,0.2\n45,1.6,61.0,-1.5\n"

    response = upload(
        client,
        "k8s-validated",
        _model(tmp_path / "m.joblib", LogisticRegression()),
        "joblib",
        sample=sample,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert body["classes"] == [0, 1]
    assert [c["name"] for c in body["input_schema"]] == ["age", "height", "weight", "score"]
    assert body["example_rows"][0] == {"age": 31, "height": 1.8, "weight": 70.5, "score": 0.2}
    assert client.get("/api/models/k8s-validated/").json()["input_size"] == 4
    [job] = kubelet.jobs
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "model-reader"
    assert cluster.names(JOBS) == set() and quarantined(gcs) == []
    stored = [b.name for b in gcs.client().list_blobs(BUCKET, prefix="console/k8s-validated/")]
    assert stored == ["console/k8s-validated/1/model.joblib", "console/k8s-validated/1/sample.csv"]


def test_what_the_job_finds_wrong_is_the_answer(
    web: ConsoleStack, cluster: Cluster, kubelet: Kubelet, gcs: GcsEmulator, tmp_path: Path
) -> None:
    client = web.client("deployer")
    create_model(client, "k8s-refused", "classification", 4)

    response = upload(
        client, "k8s-refused", _model(tmp_path / "r.joblib", LinearRegression()), "joblib"
    )

    assert response.status_code == 400, response.text
    assert "has no predict_proba" in response.json()["file"][0]
    assert len(kubelet.jobs) == 1
    assert list(gcs.client().list_blobs(BUCKET, prefix="console/k8s-refused/")) == []
    assert quarantined(gcs) == []


def test_without_a_cluster_answer_the_upload_is_unavailable_not_accepted(
    web: ConsoleStack, cluster: Cluster, tmp_path: Path
) -> None:
    """The cluster refuses the Job: 503, nothing recorded, and no validation in the web."""
    client = web.client("deployer")
    create_model(client, "k8s-nobody", "classification", 4)
    cluster.fail("POST", "jobs", 403, 'jobs.batch is forbidden: User "web" cannot create')

    response = upload(
        client, "k8s-nobody", _model(tmp_path / "n.joblib", LogisticRegression()), "joblib"
    )

    assert response.status_code == 503, response.text
    assert "jobs.batch is forbidden" in response.json()["file"][0]
    assert client.get("/api/models/k8s-nobody/versions/").json()["count"] == 0
