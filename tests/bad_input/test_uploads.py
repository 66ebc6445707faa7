"""Refused uploads: a clear message, and no version row or stored file left behind."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from tests.support.api import create_model, upload
from tests.support.models import iris_classifier, save

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def flowers(console):
    client = console.client("deployer")
    create_model(client, "flowers", "classification", 4)
    return client


def _stored_files(console) -> list[str]:
    root = console.var_dir / "artifacts" / "flowers"
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _assert_refused(console, client, response, *words: str) -> None:
    assert response.status_code == 400, response.text
    message = " ".join(response.json()["file"]).lower()
    for word in words:
        assert word.lower() in message, message
    assert client.get("/api/models/flowers/versions/").json()["count"] == 0
    assert _stored_files(console) == []
    leftovers = [p for p in (console.var_dir / "uploads").rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_file_that_is_not_a_model_is_refused(console, flowers, tmp_path):
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"this is not a model at all" * 100)
    _assert_refused(
        console, flowers, upload(flowers, "flowers", junk, "joblib"), "This is not a joblib file"
    )


def test_a_regressor_for_a_classification_model_is_refused(console, flowers, tmp_path):
    _, X = iris_classifier()
    regressor = Ridge().fit(X, X[:, 0] * 2.0)
    path = save(regressor, tmp_path / "ridge.joblib", "joblib")
    _assert_refused(
        console,
        flowers,
        upload(flowers, "flowers", path, "joblib"),
        "predict_proba",
        "classification",
    )


def test_a_wrong_feature_count_is_refused(console, flowers, tmp_path):
    _, X = iris_classifier()
    wide = LogisticRegression(max_iter=500).fit(np.hstack([X, X]), [0, 1, 2] * 50)
    path = save(wide, tmp_path / "wide.joblib", "joblib")
    _assert_refused(
        console,
        flowers,
        upload(flowers, "flowers", path, "joblib"),
        "takes 8 features",
        "registered with 4 features",
    )


def test_an_empty_file_is_refused(console, flowers, tmp_path):
    empty = tmp_path / "empty.joblib"
    empty.write_bytes(b"")
    _assert_refused(console, flowers, upload(flowers, "flowers", empty, "joblib"), "empty")


def test_a_viewer_cannot_upload(console, tmp_path):
    estimator, _ = iris_classifier()
    path = save(estimator, tmp_path / "iris.joblib", "joblib")
    viewer = console.client("viewer")
    assert viewer.get("/api/models/").status_code == 200
    create_model(console.client("deployer"), "viewer-target", "classification", 4)
    assert upload(viewer, "viewer-target", path, "joblib").status_code == 403
    assert viewer.get("/api/models/viewer-target/versions/").json()["count"] == 0


def test_the_api_requires_login(console):
    assert httpx.get(f"{console.url}/api/deployments/").status_code in (401, 403)
