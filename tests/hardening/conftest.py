"""Fixtures for the hardening tests: a registered model with two uploaded versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import create_model, upload
from tests.support.models import iris_classifier, save
from tests.support.stack import ConsoleStack


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


@pytest.fixture(scope="session")
def iris_model(console: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return register_iris(console, tmp_path_factory.mktemp("hardening-models"), "hard-iris")


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def session_client(stack: ConsoleStack, persona: str | None) -> httpx.Client:
    """A browser-like client (cookies, CSRF) logged in as `persona` through the login page."""
    client = httpx.Client(base_url=stack.url, timeout=60, follow_redirects=False)
    if persona is None:
        return client
    page = client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "username": persona,
            "password": f"{persona}-password-1",
            "csrfmiddlewaretoken": csrf_from(page.text),
        },
        headers={"Referer": f"{stack.url}/accounts/login/"},
    )
    assert response.status_code == 302, (persona, response.status_code, response.text[:500])
    return client


def ui_urls(stack: ConsoleStack, deployment: str, model: str) -> dict[str, str]:
    """The UI's paths by name, resolved by the console itself."""
    script = f"""
import json
from django.urls import reverse, NoReverseMatch
names = {{
    "dashboard": ("dashboard", {{}}),
    "models": ("model-list", {{}}),
    "model": ("model-detail", {{"name": "{model}"}}),
    "deploy-form": ("deployment-new", {{}}),
    "deployment": ("deployment-detail", {{"name": "{deployment}"}}),
    "undeploy": ("deployment-action", {{"name": "{deployment}", "action": "undeploy"}}),
    "rollback": ("deployment-action", {{"name": "{deployment}", "action": "rollback"}}),
}}
found = {{}}
for key, (name, kwargs) in names.items():
    try:
        found[key] = reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        pass
print("RESULT=" + json.dumps(found))
"""
    return stack.shell(script)
