"""`error_text` (deployments/predictions.py) on real answers: a serving app built in this process
from a config and a small fitted model, and the console's own API, both sent bad requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from fastapi import FastAPI
from rest_framework.test import APIClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from deployments import constants as st
from deployments.predictions import PredictionResult, error_text
from serving.app import create_app
from serving.config import ModelSource, ServingConfig

MAX_ROWS = 5


def readable(text: str) -> bool:
    """One line a person reads: words, no JSON or Python structures."""
    return (
        bool(text.strip())
        and text[0].isalnum()
        and not any(mark in text for mark in ("{", "}", "{'", "ErrorDetail"))
        and "\n" not in text
    )


class InProcessServing:
    """The serving app on an event loop of its own, its lifespan entered (batcher started,
    model ready), answering through httpx's ASGI transport: no socket, no server process."""

    def __init__(self, app: FastAPI) -> None:
        self.loop = asyncio.new_event_loop()
        self.lifespan = app.router.lifespan_context(app)
        self.loop.run_until_complete(self.lifespan.__aenter__())
        transport = httpx.ASGITransport(app=app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://serving")

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(path, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def serving() -> Iterator[InProcessServing]:
    X, y = load_iris(return_X_y=True)
    cfg = ServingConfig(
        model_type="joblib",
        job=st.CLASSIFICATION,
        model=ModelSource(method="LOCAL", path="/unused/model.joblib"),
        input_size=4,
        name="iris",
        version="1",
        max_batch_rows=MAX_ROWS,
    )
    server = InProcessServing(create_app(cfg, LogisticRegression(max_iter=1000).fit(X, y)))
    try:
        yield server
    finally:
        server.close()


def test_the_serving_app_answers_a_good_request(serving: InProcessServing) -> None:
    response = serving.post("/predict", json=[[5.1, 3.5, 1.4, 0.2]])
    assert response.status_code == 200
    assert len(response.json()["predictions"][0]) == 3


SERVING_BAD_REQUESTS = [
    ("wrong feature count", [[1, 2, 3]], 422, "row 0: expected 4 features, got 3"),
    ("ragged rows", [[1, 2, 3, 4], [1, 2]], 422, "row 1: expected 4 features, got 2"),
    ("a string", "abc", 422, "expected a matrix (an array of rows), got a string"),
    (
        "a string in a row",
        [[1, "a", 3, 4]],
        422,
        "row 0, feature 1: expected a number, got a string",
    ),
    ("a boolean in a row", [[1, True, 3, 4]], 422, "row 0, feature 1: expected a number"),
    ("a row that is a number", [[1, 2, 3, 4], 5], 422, "row 1: expected an array of 4 numbers"),
    ("an empty matrix", [], 422, "the input is empty: send at least one row"),
    ("an empty instances", {"instances": []}, 422, "the input is empty: send at least one row"),
    (
        "too many rows",
        [[1, 2, 3, 4]] * (MAX_ROWS + 1),
        413,
        f"{MAX_ROWS + 1} rows is more than the limit of {MAX_ROWS} per request",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [case[1:] for case in SERVING_BAD_REQUESTS],
    ids=[case[0] for case in SERVING_BAD_REQUESTS],
)
def test_serving_errors_read_as_sentences(
    serving: InProcessServing, body: Any, status: int, words: str
) -> None:
    response = serving.post("/predict", json=body)
    assert response.status_code == status
    text = error_text(response.json())
    assert text.startswith(words)
    assert readable(text), text
    assert PredictionResult(status, response.json(), 1.0).error_text() == text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "the request body is empty: send a JSON matrix of numbers"),
        (b"[[1, 2, 3, 4]", "the request body is not valid JSON"),
        (b"[[1, 2, 3, NaN]]", "the request body is not valid JSON"),
    ],
)
def test_serving_errors_for_bodies_that_are_not_json(
    serving: InProcessServing, content: bytes, words: str
) -> None:
    response = serving.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    text = error_text(response.json())
    assert text.startswith(words)
    assert readable(text), text


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        (
            "/v2/models/iris/infer",
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]},
            400,
            "input 'x': expected 4 features per row, shape says 3",
        ),
        (
            "/v2/models/iris/infer",
            {"inputs": []},
            400,
            "expected exactly one tensor in 'inputs', got 0",
        ),
        (
            "/v2/models/setosa/infer",
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}]},
            404,
            "model 'setosa' is not served here (this is 'iris')",
        ),
    ],
)
def test_serving_open_inference_errors_read_as_sentences(
    serving: InProcessServing, path: str, body: dict, status: int, words: str
) -> None:
    response = serving.post(path, json=body)
    assert response.status_code == status
    text = error_text(response.json())
    assert text == words
    assert readable(text), text


# The console's own answers -----------------------------------------------------------------------


@pytest.fixture
def api(db: None) -> APIClient:
    client = APIClient()
    # No password: nothing here logs in, and hashing one costs more than the test.
    client.force_authenticate(User.objects.create(username="admin", is_superuser=True))
    return client


@pytest.mark.django_db
def test_console_field_errors_name_each_field(api: APIClient) -> None:
    response = api.post(
        "/api/deployments/",
        {
            "name": "Iris Prod",
            "model": "iris",
            "replicas": st.MAX_REPLICAS + 1,
            "cpu_limit": "lots",
        },
        format="json",
    )
    assert response.status_code == 400
    text = error_text(response.json())
    assert readable(text), text
    assert (
        'name: Use lowercase letters, digits and dashes, starting with a letter, e.g. "iris-prod".'
    ) in text
    assert f"replicas: {st.REPLICAS_MESSAGE}" in text
    assert f"cpu_limit: {st.QUANTITY_MESSAGE}" in text


@pytest.mark.django_db
def test_console_validation_of_the_model_reads_as_a_sentence(api: APIClient) -> None:
    response = api.post("/api/deployments/", {"name": "iris-prod", "model": "nope"}, format="json")
    assert response.status_code == 400
    assert error_text(response.json()) == "model: no model named 'nope'"


@pytest.mark.django_db
def test_console_detail_answers(api: APIClient, make_deployment) -> None:
    missing = api.get("/api/deployments/nope/")
    assert missing.status_code == 404
    assert error_text(missing.json()) == "No deployment named 'nope'."

    make_deployment(st.PENDING)
    busy = api.post("/api/deployments/iris-prod/deploy/")
    assert busy.status_code == 409
    assert error_text(busy.json()) == (
        "iris-prod is pending; it can be deployed only when degraded, failed, running, stopped"
    )

    not_serving = api.post("/api/deployments/iris-prod/predict/", [[1, 2, 3, 4]], format="json")
    assert not_serving.status_code == 409
    assert error_text(not_serving.json()) == "iris-prod is pending, not serving"

    not_a_number = api.post(
        "/api/deployments/iris-prod/predict/",
        "[[1, 2, 3, NaN]]",
        content_type="application/json",
    )
    assert not_a_number.status_code == 400
    text = error_text(not_a_number.json())
    assert text.startswith("JSON parse error") and "NaN is not a JSON number" in text

    for response in (missing, busy, not_serving, not_a_number):
        assert readable(error_text(response.json()))


@pytest.mark.django_db
def test_console_refuses_anonymous_clients_in_words() -> None:
    response = APIClient().get("/api/deployments/")
    assert response.status_code == 401
    assert error_text(response.json()) == "Authentication credentials were not provided."


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"error": "row 0: expected 4 features, got 3"}, "row 0: expected 4 features, got 3"),
        ({"detail": "Not found."}, "Not found."),
        (
            {
                "detail": [
                    {"loc": ["body", "instances"], "msg": "Field required", "type": "missing"}
                ]
            },
            "Field required",
        ),
        (
            {"name": ["This field is required."], "replicas": ["A valid integer is required."]},
            "name: This field is required.; replicas: A valid integer is required.",
        ),
        (
            {"non_field_errors": ["Give a model or a version."]},
            "non_field_errors: Give a model or a version.",
        ),
        ({"approve_types": {"0": ["Too long."]}}, "approve_types: 0: Too long."),
        (["one", "two"], "one; two"),
        ("plain words", "plain words"),
    ],
)
def test_error_text_of_each_shape(body: Any, text: str) -> None:
    assert error_text(body) == text
    assert error_text(json.loads(json.dumps(body))) == text
