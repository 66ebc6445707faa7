"""The UI forms' bad-input catalogue, posted as a browser would (session, CSRF): each case
re-renders the form with a 400 and a message at the field, and creates nothing."""

from __future__ import annotations

import html

import httpx
import pytest

from tests.support.ui import session_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ui(console, iris_model) -> tuple[httpx.Client, dict]:
    client = session_client(console, "deployer")
    facts = console.shell(
        """
import json
from django.urls import reverse
from deployments.models import ModelVersion
print("RESULT=" + json.dumps({
    "version_pk": ModelVersion.objects.get(model__name="hard-iris", version=1).pk,
    "deploy": reverse("deployment-new"),
    "models": reverse("model-list"),
}))
"""
    )
    return client, facts


def _post(console, client: httpx.Client, path: str, data: dict) -> httpx.Response:
    client.get(path)
    return client.post(
        path,
        data={**data, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": console.url + path},
    )


DEPLOY_CASES = [
    ("upper case name", {"name": "Iris-Prod"}, "DNS-1123"),
    ("path traversal name", {"name": "../x"}, "DNS-1123"),
    ("name over 63 characters", {"name": "a" * 64}, "Use at most 63"),
    ("unicode name", {"name": "modèle"}, "DNS-1123"),
    ("empty name", {"name": ""}, "This field is required"),
    ("unknown version", {"version": "999999"}, "Select a valid choice"),
    ("no version chosen", {"version": ""}, "This field is required"),
    ("negative replicas", {"replicas": "-1"}, "greater than or equal to 0"),
    ("too many replicas", {"replicas": "51"}, "less than or equal to 50"),
    ("replicas not a number", {"replicas": "two"}, "Enter a whole number"),
    ("bad cpu quantity", {"cpu_request": "lots"}, "Kubernetes quantity"),
    ("shell in memory limit", {"memory_limit": "1Gi;reboot"}, "Kubernetes quantity"),
]


@pytest.mark.parametrize(
    ("changes", "message"),
    [case[1:] for case in DEPLOY_CASES],
    ids=[case[0] for case in DEPLOY_CASES],
)
def test_deploy_form_refuses(console, ui, changes, message):
    client, facts = ui
    data = {
        "name": "form-bad",
        "version": str(facts["version_pk"]),
        "replicas": "1",
        "cpu_request": "100m",
        "memory_request": "256Mi",
        "cpu_limit": "1",
        "memory_limit": "1Gi",
        **changes,
    }
    before = console.client("admin").get("/api/deployments/", params={"limit": 1}).json()["count"]
    response = _post(console, client, facts["deploy"], data)
    assert response.status_code == 400, response.status_code
    assert message in html.unescape(response.text)
    admin = console.client("admin")
    assert admin.get("/api/deployments/", params={"limit": 1}).json()["count"] == before
    assert admin.get("/api/deployments/form-bad/").status_code == 404


MODEL_CASES = [
    ("upper case name", {"name": "Iris"}, "DNS-1123"),
    ("traversal name", {"name": "../../etc"}, "DNS-1123"),
    ("unknown job", {"job": "clustering"}, "Select a valid choice"),
    ("zero features", {"input_size": "0"}, "greater than or equal to 1"),
    ("features not a number", {"input_size": "four"}, "Enter a whole number"),
    ("name taken", {"name": "hard-iris"}, "already exists"),
]


@pytest.mark.parametrize(
    ("changes", "message"),
    [case[1:] for case in MODEL_CASES],
    ids=[case[0] for case in MODEL_CASES],
)
def test_model_form_refuses(console, ui, changes, message):
    client, facts = ui
    data = {"name": "form-model", "job": "classification", "input_size": "4", **changes}
    before = console.client("admin").get("/api/models/", params={"limit": 1}).json()["count"]
    response = _post(console, client, facts["models"], data)
    assert response.status_code == 400, response.status_code
    assert message in html.unescape(response.text)
    admin = console.client("admin")
    assert admin.get("/api/models/", params={"limit": 1}).json()["count"] == before
    assert admin.get("/api/models/hard-iris/").json()["job"] == "classification"
