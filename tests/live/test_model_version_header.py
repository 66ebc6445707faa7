"""Every prediction answer of serving says which model version produced it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from serving.app import create_app
from serving.config import ModelSource, ServingConfig


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    X, y = load_iris(return_X_y=True)
    cfg = ServingConfig(
        model_type="joblib",
        job="classification",
        model=ModelSource(method="LOCAL", path="/unused/model.joblib"),
        input_size=4,
        name="iris",
        version="7",
    )
    app = create_app(cfg, LogisticRegression(max_iter=1000).fit(X, y))
    with TestClient(app) as test_client:
        yield test_client


def test_predict_answers_carry_the_model_version(client: TestClient) -> None:
    ok = client.post("/predict", json=[[5.1, 3.5, 1.4, 0.2]])
    assert ok.status_code == 200
    assert ok.headers["model-version"] == "7"
    bad = client.post("/predict", json=[[1, 2]])
    assert bad.status_code == 422
    assert bad.headers["model-version"] == "7"


def test_open_inference_answers_carry_the_model_version(client: TestClient) -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
    ok = client.post("/v2/models/iris/infer", json=body)
    assert ok.status_code == 200, ok.text
    assert ok.headers["model-version"] == "7"
