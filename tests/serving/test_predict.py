"""/predict against real serving processes, compared with scikit-learn in-process."""

from __future__ import annotations

import httpx
import numpy as np


def test_classification_bare_matrix_matches_predict_proba(iris_server, iris) -> None:
    model, X = iris
    rows = X[::7]
    response = httpx.post(f"{iris_server.url}/predict", json=rows.tolist())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["classes"] == [0, 1, 2]
    np.testing.assert_allclose(body["predictions"], model.predict_proba(rows), rtol=0, atol=1e-9)


def test_classification_instances_body(iris_server, iris) -> None:
    model, X = iris
    response = httpx.post(f"{iris_server.url}/predict", json={"instances": X[:3].tolist()})
    assert response.status_code == 200
    np.testing.assert_allclose(
        response.json()["predictions"], model.predict_proba(X[:3]), rtol=0, atol=1e-9
    )


def test_regression_returns_values(diabetes_server, diabetes) -> None:
    model, X = diabetes
    response = httpx.post(f"{diabetes_server.url}/predict", json=X[:25].tolist())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"predictions"}
    assert all(isinstance(v, float) for v in body["predictions"])
    np.testing.assert_allclose(body["predictions"], model.predict(X[:25]), rtol=0, atol=1e-9)


def test_health_endpoints(iris_server) -> None:
    assert httpx.get(f"{iris_server.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{iris_server.url}/v2/health/ready").status_code == 200


def test_wrong_feature_count_names_the_row(iris_server) -> None:
    response = httpx.post(f"{iris_server.url}/predict", json=[[1, 2, 3, 4], [1, 2, 3]])
    assert response.status_code == 422
    assert response.json() == {"error": "row 1: expected 4 features, got 3"}
