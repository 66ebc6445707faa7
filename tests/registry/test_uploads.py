"""Uploads through the REST API to both artifact stores, and what a version then shows."""

from __future__ import annotations

import hashlib

import pytest
import sklearn

from tests.support.api import create_model, upload
from tests.support.models import (
    claiming_sklearn_version,
    iris_classifier,
    padded_classifier,
    save,
    widthless_classifier,
)

pytestmark = pytest.mark.integration

FIFTY_MB = 50 * 1000 * 1000


def test_a_50_mb_artifact_round_trips_with_its_sha256(registry, tmp_path):
    client = registry.client()
    create_model(client, "big", "classification", 4)
    artifact = padded_classifier(tmp_path / "big.joblib", FIFTY_MB)
    expected = hashlib.sha256(artifact.read_bytes()).hexdigest()

    response = upload(client, "big", artifact, "joblib")

    assert response.status_code == 201, response.text
    version = response.json()
    assert version["sha256"] == expected
    assert version["size"] == artifact.stat().st_size > FIFTY_MB
    stored = registry.stored("big")
    assert list(stored) == [f"big/{version['version']}/model.joblib"]
    assert hashlib.sha256(stored[f"big/{version['version']}/model.joblib"]).hexdigest() == expected
    scheme = "file://" if registry.kind == "file" else "gs://registry-test/artifacts/"
    assert version["uri"].startswith(scheme)
    assert version["uri"].endswith(f"big/{version['version']}/model.joblib")


def test_the_version_detail_shows_what_validation_learned_and_who_uploaded(registry, tmp_path):
    client = registry.client()
    create_model(client, "detail", "classification", 4)
    artifact = save(iris_classifier()[0], tmp_path / "iris.pkl", "pkl")
    created = upload(client, "detail", artifact, "pkl").json()

    detail = registry.client("viewer").get(f"/api/models/detail/versions/{created['version']}/")

    assert detail.status_code == 200
    body = detail.json()
    assert body == created
    assert body["uploaded_by"] == "deployer"
    assert body["model_type"] == "pkl"
    assert body["classes"] == [0, 1, 2]
    assert body["n_features"] == 4
    assert body["library_versions"] == {"scikit-learn": sklearn.__version__}
    assert body["warnings"] == []
    assert "sklearn.linear_model._logistic.LogisticRegression" in body["imported_globals"]
    assert body["deployments"] == []


def test_an_artifact_from_another_sklearn_is_accepted_with_a_warning(
    registries, tmp_path, monkeypatch
):
    client = registries["file"].client()
    create_model(client, "old-sklearn", "classification", 4)
    artifact = claiming_sklearn_version(tmp_path / "old.joblib", "1.0.2", monkeypatch)

    response = upload(client, "old-sklearn", artifact, "joblib")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["library_versions"] == {"scikit-learn": "1.0.2"}
    assert len(body["warnings"]) == 1
    warning = body["warnings"][0]
    assert f"made with scikit-learn 1.0.2, but serving runs scikit-learn {sklearn.__version__}" in (
        warning
    )
    stored = client.get(f"/api/models/old-sklearn/versions/{body['version']}/").json()
    assert stored["warnings"] == body["warnings"]


def test_models_filter_by_name_and_versions_paginate(registries, tmp_path):
    client = registries["file"].client()
    create_model(client, "filter-alpha", "classification", None)  # its first version says 4
    create_model(client, "filter-beta", "classification", 4)
    joblib_file = save(iris_classifier()[0], tmp_path / "iris.joblib", "joblib")
    pkl_file = save(iris_classifier()[0], tmp_path / "iris.pkl", "pkl")
    for path, kind in [(pkl_file, "pkl"), (joblib_file, "joblib")]:
        assert upload(client, "filter-alpha", path, kind).status_code == 201
    assert client.get("/api/models/filter-alpha/").json()["input_size"] == 4

    names = [m["name"] for m in client.get("/api/models/?name=filter-").json()["results"]]
    assert names == ["filter-alpha", "filter-beta"]
    assert [m["name"] for m in client.get("/api/models/?name=ALPHA").json()["results"]] == [
        "filter-alpha"
    ]

    page = client.get("/api/models/filter-alpha/versions/?limit=1&offset=0").json()
    assert page["count"] == 2
    assert [v["version"] for v in page["results"]] == [2]
    assert page["next"] is not None
    rest = client.get(page["next"]).json()
    assert [v["version"] for v in rest["results"]] == [1]
    assert rest["next"] is None
    pickles = client.get("/api/models/filter-alpha/versions/?model_type=pkl").json()
    assert [v["version"] for v in pickles["results"]] == [1]
    assert client.get("/api/models/no-such-model/versions/").status_code == 404


def test_a_model_registered_without_its_width_takes_it_from_the_sample(registries, tmp_path):
    """The file does not say how many features it takes: refused in plain words without a
    sample, accepted with one (its header gives the width), and later versions must match."""
    registry = registries["file"]
    client = registry.client()
    assert create_model(client, "widthless", "classification", None)["input_size"] is None
    artifact, sample = widthless_classifier(tmp_path / "old.joblib")

    refused = upload(client, "widthless", artifact, "joblib")

    assert refused.status_code == 400, refused.text
    # The whole sentence is in the words catalogue (tests/unit/test_bad_input_catalogue.py).
    [message] = refused.json()["file"]
    assert message.startswith("The file's LogisticRegression does not say how many features")
    assert "Upload a sample CSV with the version" in message
    assert client.get("/api/models/widthless/").json()["input_size"] is None
    assert registry.stored_names("widthless") == []

    accepted = upload(client, "widthless", artifact, "joblib", sample=sample)

    assert accepted.status_code == 201, accepted.text
    body = accepted.json()
    assert [c["name"] for c in body["input_schema"]] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
    ]
    assert body["n_features"] is None  # the file still does not say; the model does
    assert client.get("/api/models/widthless/").json()["input_size"] == 3

    wider = upload(
        client, "widthless", save(iris_classifier()[0], tmp_path / "4.pkl", "pkl"), "pkl"
    )

    assert wider.status_code == 400, wider.text
    assert (
        "takes 4 features, but this model is registered with 3 features"
        in (wider.json()["file"][0])
    )
