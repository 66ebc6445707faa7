"""Helpers of the live-deployment tests: a registered iris model, waiting for a status, and
`manage.py runconsole` (what `make run` starts) under test. Only tests/support is imported, so
these tests do not depend on where the other test folders live."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.support.models import iris_classifier, save
from tests.support.stack import ConsoleStack

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


def register_iris(stack: ConsoleStack, folder: Path, name: str, versions: int = 2) -> list[int]:
    """A classification model `name` with `versions` uploaded versions; their numbers."""
    client = stack.client("deployer")
    response = client.post(
        "/api/models/", json={"name": name, "job": "classification", "input_size": 4}
    )
    assert response.status_code == 201, response.text
    estimator, _ = iris_classifier()
    numbers = []
    for i in range(versions):
        estimator.set_params(C=1.0 + i)
        path = save(estimator, folder / f"{name}-{i}.joblib", "joblib")
        with path.open("rb") as f:
            response = client.post(
                f"/api/models/{name}/versions/",
                files={"file": (path.name, f)},
                data={"model_type": "joblib"},
            )
        assert response.status_code == 201, response.text
        numbers.append(response.json()["version"])
    return numbers


def wait_for(client: httpx.Client, name: str, check, timeout: float = 120) -> dict:
    """Poll the deployment until `check(body)` holds; its last body."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/deployments/{name}/").json()
        if check(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{name}: condition not met in {timeout} s; last seen: {body}")


def wait_for_status(client: httpx.Client, name: str, status: str, timeout: float = 120) -> dict:
    body = wait_for(client, name, lambda b: b.get("status") in {status, "failed"}, timeout)
    assert body["status"] == status, body
    return body


def page_text(stack: ConsoleStack, path: str, persona: str = "viewer") -> str:
    """A console page's HTML as `persona` sees it, logged in through the login page."""
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        login = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        response = client.post(
            "/accounts/login/",
            data={
                "username": persona,
                "password": f"{persona}-password-1",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{stack.url}/accounts/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        page = client.get(path)
        assert page.status_code == 200, page.status_code
        return page.text
