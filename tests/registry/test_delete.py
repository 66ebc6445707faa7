"""Deleting a version: refused while a deployment uses it, otherwise the blob goes too."""

from __future__ import annotations

import pytest

from tests.support.api import create_model, upload
from tests.support.models import iris_classifier, save

pytestmark = pytest.mark.integration


def test_a_version_in_use_cannot_be_deleted_and_an_unused_one_takes_its_blob(registry, tmp_path):
    client = registry.client()
    model = f"deletable-{registry.kind}"
    create_model(client, model, "classification", 4)
    artifact = save(iris_classifier()[0], tmp_path / "iris.joblib", "joblib")
    for _ in range(2):
        assert upload(client, model, artifact, "joblib").status_code == 201
    assert registry.stored_names(model) == [f"{model}/1/model.joblib", f"{model}/2/model.joblib"]
    deployment = f"uses-{model}"
    response = client.post(
        "/api/deployments/", json={"name": deployment, "model": model, "version": 1}
    )
    assert response.status_code == 202, response.text

    in_use = client.delete(f"/api/models/{model}/versions/1/")

    assert in_use.status_code == 409, in_use.text
    assert deployment in in_use.json()["detail"]
    assert client.get(f"/api/models/{model}/versions/1/").json()["deployments"] == [deployment]
    assert f"{model}/1/model.joblib" in registry.stored_names(model)

    assert registry.client("viewer").delete(f"/api/models/{model}/versions/2/").status_code == 403
    unused = client.delete(f"/api/models/{model}/versions/2/")

    assert unused.status_code == 204, unused.text
    assert client.get(f"/api/models/{model}/versions/2/").status_code == 404
    assert registry.stored_names(model) == [f"{model}/1/model.joblib"]
    assert client.delete(f"/api/models/{model}/versions/2/").status_code == 404
