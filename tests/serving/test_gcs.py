"""Loading from GCS: the real google-cloud-storage client against gcp-storage-emulator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from google.cloud import storage

from serving.config import ModelSource, ServingConfig, dump_config
from serving.loading import ArtifactError, load_model

BUCKET = "models"
BLOB = "iris/3/model.joblib"


@pytest.fixture(scope="module")
def uploaded(gcs_emulator: str, iris, workdir: Path) -> str:
    """Upload the iris model to the emulator; returns its sha256."""
    artifact = workdir / "gcs-iris.joblib"
    joblib.dump(iris[0], artifact)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
        client = storage.Client(project="test")
        bucket = client.bucket(BUCKET)
        if not bucket.exists():
            bucket = client.create_bucket(BUCKET)
        bucket.blob(BLOB).upload_from_filename(str(artifact))
    return hashlib.sha256(artifact.read_bytes()).hexdigest()


def gcs_config(blob: str = BLOB, sha256: str | None = None) -> ServingConfig:
    source = ModelSource(
        method="GCS", project_name="test", bucket_name=BUCKET, blob_dir=blob, sha256=sha256
    )
    return ServingConfig(
        model_type="joblib", job="classification", model=source, input_size=4, name="iris"
    )


@pytest.fixture
def emulator_env(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)


def test_load_model_from_gcs(uploaded: str, emulator_env, iris) -> None:
    model = load_model(gcs_config(sha256=uploaded))
    np.testing.assert_allclose(model.predict_proba(iris[1]), iris[0].predict_proba(iris[1]))


def test_missing_blob_is_a_clear_error(uploaded: str, emulator_env) -> None:
    with pytest.raises(ArtifactError, match="artifact not found: gs://models/iris/9/model.joblib"):
        load_model(gcs_config(blob="iris/9/model.joblib"))


def test_gcs_artifact_with_wrong_sha256_is_refused(uploaded: str, emulator_env) -> None:
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_model(gcs_config(sha256="b" * 64))


def test_serving_process_loads_from_gcs(
    uploaded: str, gcs_emulator: str, start_serving, workdir: Path, iris
) -> None:
    config = workdir / "gcs-iris.yaml"
    config.write_text(dump_config(gcs_config(sha256=uploaded)))
    server = start_serving(config, env={"STORAGE_EMULATOR_HOST": gcs_emulator})
    model, X = iris
    response = httpx.post(f"{server.url}/predict", json=X[:9].tolist())
    assert response.status_code == 200
    np.testing.assert_allclose(
        response.json()["predictions"], model.predict_proba(X[:9]), rtol=0, atol=1e-9
    )
    server.stop()
