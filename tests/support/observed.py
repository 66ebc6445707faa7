"""A deployment with traffic to observe: an iris model with a reference CSV, deployed on the
session's console, then sent prediction requests whose third feature is shifted by three
standard deviations of the reference (the others are drawn as the reference is)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from tests.support.api import register_iris, wait_for_status
from tests.support.stack import ConsoleStack

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MEANS = np.array([5.84, 3.06, 3.76, 1.2])
STDS = np.array([0.83, 0.44, 1.77, 0.76])
SHIFTED = 2  # petal_length
REQUESTS = 120
ROWS_PER_REQUEST = 4


@dataclass
class Observed:
    name: str
    endpoint: str
    sent: list[list[float]] = field(default_factory=list)  # every row, in order
    requests: int = 0

    def send(self, count: int, seed: int) -> None:
        """`count` requests of ROWS_PER_REQUEST rows straight to the endpoint."""
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=self.endpoint, timeout=30) as client:
            for _ in range(count):
                rows = rng.normal(MEANS, STDS, (ROWS_PER_REQUEST, len(COLUMNS)))
                rows[:, SHIFTED] += 3 * STDS[SHIFTED]
                body = [[round(float(v), 4) for v in row] for row in rows]
                answer = client.post("/predict", json=body)
                assert answer.status_code == 200, answer.text
                self.sent += body
                self.requests += 1


def reference_csv(rows: int = 2000, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    for row in rng.normal(MEANS, STDS, (rows, len(COLUMNS))):
        out.write(",".join(f"{v:.4f}" for v in row) + "\n")
    return out.getvalue().encode()


def observed_deployment(console: ConsoleStack, folder: Path) -> Observed:
    model = register_iris(console, folder, "observed-iris", versions=1)
    client = console.client("deployer")
    version = model.versions[0]
    response = client.put(
        f"/api/models/observed-iris/versions/{version}/reference/",
        content=reference_csv(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["reference_uri"]
    response = client.post("/api/deployments/", json={"name": "observed", "model": model.model})
    assert response.status_code == 202, response.text
    body = wait_for_status(client, "observed", {"running", "failed"})
    assert body["status"] == "running", body
    observed = Observed("observed", body["endpoint"])
    observed.send(REQUESTS, seed=1)
    return observed
