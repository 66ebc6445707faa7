"""Steps of the user's flow through the REST API: create a model, upload versions, wait for a
deployment to settle."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.models import iris_classifier, save
from tests.support.stack import ConsoleStack

TERMINAL = {"running", "failed", "stopped", "degraded"}


def create_model(client: httpx.Client, name: str, job: str, input_size: int | None) -> dict:
    """Register a model; `input_size` None leaves it to the first version's upload."""
    body: dict = {"name": name, "job": job}
    if input_size is not None:
        body["input_size"] = input_size
    response = client.post("/api/models/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def upload(
    client: httpx.Client, model: str, path: Path, model_type: str, sample: bytes | None = None
) -> httpx.Response:
    """Upload `path` as a version of `model`, with a sample CSV when one is given."""
    with path.open("rb") as f:
        files: dict = {"file": (path.name, f)}
        if sample is not None:
            files["sample"] = ("sample.csv", sample)
        return client.post(
            f"/api/models/{model}/versions/", files=files, data={"model_type": model_type}
        )


def wait_for_status(
    client: httpx.Client, name: str, wanted: set[str], timeout: float = 150
) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/deployments/{name}/").json()
        if body.get("status") in wanted:
            return body
        time.sleep(0.3)
    raise AssertionError(f"{name} did not reach {wanted} in {timeout} s; last seen: {body}")


@dataclass
class Registered:
    model: str
    versions: list[int]


def register_iris(stack: ConsoleStack, folder: Path, name: str, versions: int = 2) -> Registered:
    """A classification model `name` with `versions` uploaded (and validated) versions."""
    client = stack.client("deployer")
    create_model(client, name, "classification", 4)
    estimator, _ = iris_classifier()
    numbers = []
    for i in range(versions):
        estimator.set_params(C=1.0 + i)
        path = save(estimator, folder / f"{name}-{i}.joblib", "joblib")
        response = upload(client, name, path, "joblib")
        assert response.status_code == 201, response.text
        numbers.append(response.json()["version"])
    return Registered(name, numbers)
