"""What the registry hands on: blobs are never overwritten, and serving gets the artifact, its
sha256 and its trusted skops types from the version."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import skops.io

from tests.support.api import create_model, upload, wait_for_status
from tests.support.models import forest, iris_classifier, save
from tests.support.registry import BUCKET, PREFIX, TREE_TYPE

pytestmark = pytest.mark.integration


def test_a_stored_blob_is_never_overwritten(registry, tmp_path):
    """A blob already holding the next version's name (say, left by a failed delete) is kept:
    the upload takes the following number instead."""
    client = registry.client()
    model = f"write-once-{registry.kind}"
    create_model(client, model, "classification", 4)
    squatter = b"an older artifact that must survive"
    if registry.gcs is None:
        path = registry.stack.var_dir / "artifacts" / model / "1" / "model.joblib"
        path.parent.mkdir(parents=True)
        path.write_bytes(squatter)
    else:
        bucket = registry.gcs.client().bucket(BUCKET)
        bucket.blob(f"{PREFIX}/{model}/1/model.joblib").upload_from_string(squatter)
    artifact = save(iris_classifier()[0], tmp_path / "iris.joblib", "joblib")

    response = upload(client, model, artifact, "joblib")

    assert response.status_code == 201, response.text
    assert response.json()["version"] == 2
    stored = registry.stored(model)
    assert stored[f"{model}/1/model.joblib"] == squatter
    assert stored[f"{model}/2/model.joblib"] == artifact.read_bytes()


def test_a_skops_model_on_gcs_deploys_with_its_trusted_types_and_sha256(registries, tmp_path):
    registry = registries["gcs"]
    client = registry.client()
    create_model(client, "gcs-forest", "classification", 4)
    artifact = forest(tmp_path / "forest.skops", "skops")
    version = upload(client, "gcs-forest", artifact, "skops").json()
    assert version["trusted_types"] == [TREE_TYPE]
    assert version["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()

    response = client.post(
        "/api/deployments/",
        json={"name": "gcs-forest", "model": "gcs-forest", "version": version["version"]},
    )
    assert response.status_code == 202, response.text
    deployment = wait_for_status(client, "gcs-forest", {"running", "failed"})
    assert deployment["status"] == "running", deployment["status_reason"]

    _, X = iris_classifier()
    expected = skops.io.load(artifact, trusted=[TREE_TYPE]).predict_proba(X[:5])
    answer = client.post("/api/deployments/gcs-forest/predict/", json=X[:5].tolist())
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], expected, rtol=0, atol=1e-12)
    assert client.post("/api/deployments/gcs-forest/undeploy/").status_code == 202


def test_serving_refuses_a_blob_changed_after_registration(registries, tmp_path):
    registry = registries["gcs"]
    client = registry.client()
    create_model(client, "tampered", "classification", 4)
    artifact = save(iris_classifier()[0], tmp_path / "iris.joblib", "joblib")
    version = upload(client, "tampered", artifact, "joblib").json()
    # Someone with write access to the bucket swaps the blob for another valid model.
    other, _ = iris_classifier()
    other.coef_ = other.coef_ * 2
    swapped = save(other, tmp_path / "other.joblib", "joblib").read_bytes()
    blob_name = version["uri"].removeprefix(f"gs://{BUCKET}/")
    registry.gcs.client().bucket(BUCKET).blob(blob_name).upload_from_string(swapped)

    response = client.post(
        "/api/deployments/", json={"name": "tampered", "model": "tampered", "version": 1}
    )
    assert response.status_code == 202, response.text
    deployment = wait_for_status(client, "tampered", {"running", "failed"})

    assert deployment["status"] == "failed"
    assert "sha256 mismatch" in deployment["status_reason"]
    assert version["sha256"] in deployment["status_reason"]
