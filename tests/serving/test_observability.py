"""Prometheus metrics and the structured access log."""

from __future__ import annotations

import json
import time

import httpx


def test_metrics_cover_requests_rows_batches_and_the_model(iris_server, iris) -> None:
    rows = iris[1][:5].tolist()
    assert httpx.post(f"{iris_server.url}/predict", json=rows).status_code == 200
    text = httpx.get(f"{iris_server.url}/metrics").text
    assert 'serving_requests_total{method="POST",route="/predict",status="200"}' in text
    assert (
        'serving_request_duration_seconds_bucket{le="0.005",method="POST",route="/predict"' in text
    )
    assert "serving_rows_predicted_total " in text
    assert "serving_batch_rows_bucket" in text
    assert "serving_model_load_seconds " in text
    assert 'serving_model_info{name="iris",sha256="",version="3"} 1.0' in text


def test_one_structured_access_log_line_per_request(iris_server) -> None:
    path = f"/v2/models/probe-{time.time_ns()}"  # unique, so its lines are this request's
    assert httpx.get(f"{iris_server.url}{path}").status_code == 404
    entries: list[dict] = []
    for _ in range(50):  # the line is written just after the response is sent
        entries = [
            json.loads(line)
            for line in iris_server.log().splitlines()
            if f'"path":"{path}"' in line
        ]
        if entries:
            break
        time.sleep(0.02)
    assert len(entries) == 1
    assert entries[0]["method"] == "GET"
    assert entries[0]["route"] == "/v2/models/{name}"
    assert entries[0]["status"] == 404
    assert entries[0]["ms"] >= 0
