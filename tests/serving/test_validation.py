"""Bad input gets a 422 or 413 naming the problem, never a 500, and the server keeps serving."""

from __future__ import annotations

import httpx
import pytest

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[[1, 2, 3, 4], [1, 2, 3]]", "row 1: expected 4 features, got 3"),
        (b"[[1, 2, 3, 4, 5]]", "row 0: expected 4 features, got 5"),
        (b'[[1, 2, 3, 4], [1, 2, "x", 4]]', "row 1, feature 2: expected a number, got a string"),
        (b"[[1, 2, 3, 4], [1, true, 3, 4]]", "row 1, feature 1: expected a number, got a boolean"),
        (b"[[1, 2, 3, null]]", "row 0, feature 3: expected a number, got null"),
        (b"[[1, 2, 3, 4], 7]", "row 1: expected an array of 4 numbers, got a number"),
        (b"[[1, 2, 3, 4], [1, 2, [3], 4]]", "row 1, feature 2: expected a number, got an array"),
        (b"[[1, 2, 3, 1e999]]", "not valid JSON"),
        (b"[[1, 2, 3, NaN]]", "not valid JSON"),
        (b"[]", "the input is empty"),
        (b'{"instances": []}', "the input is empty"),
        (b'{"rows": [[1, 2, 3, 4]]}', '{"instances"'),
        (b"{", "not valid JSON"),
        (b"", "the request body is empty"),
        (b'"text"', "expected a matrix"),
        (b"[1, 2, 3, 4]", "row 0: expected an array of 4 numbers, got a number"),
    ],
)
def test_bad_predict_bodies_get_422_naming_the_problem(iris_server, body, message) -> None:
    response = httpx.post(
        f"{iris_server.url}/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


def test_too_many_rows_is_413(iris_server) -> None:
    response = httpx.post(f"{iris_server.url}/predict", json=[ROW] * 1001)  # limit is 1000
    assert response.status_code == 413
    assert "1001 rows is more than the limit of 1000" in response.json()["error"]


def test_too_large_a_body_is_413(iris_server) -> None:
    body = b"[" + b",".join([b"[1.0,2.0,3.0,4.0]"] * 70_000) + b"]"  # > 1,000,000 bytes
    response = httpx.post(f"{iris_server.url}/predict", content=body)
    assert response.status_code == 413
    assert "limit of 1000000" in response.json()["error"]


def test_server_keeps_answering_after_errors(iris_server) -> None:
    for body in (b"[[", b"[[1]]", b"[[1,2,3,4]]" * 3):
        httpx.post(f"{iris_server.url}/predict", content=body)
    response = httpx.post(f"{iris_server.url}/predict", json=[ROW])
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1


def test_errors_are_counted_in_metrics(iris_server) -> None:
    httpx.post(f"{iris_server.url}/predict", content=b"[[1]]")
    text = httpx.get(f"{iris_server.url}/metrics").text
    assert 'serving_requests_total{method="POST",route="/predict",status="422"}' in text
