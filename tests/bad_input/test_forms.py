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
    ("upper case name", {"name": "Iris-Prod"}, 'e.g. "iris-prod".'),
    ("path traversal name", {"name": "../x"}, 'e.g. "x".'),
    ("name over 63 characters", {"name": "a" * 64}, "Use at most 63"),
    ("unicode name", {"name": "modèle"}, 'e.g. "mod-le".'),
    ("empty name", {"name": ""}, "Enter a name."),
    ("unknown version", {"version": "999999"}, "Choose one of the listed model versions."),
    ("no version chosen", {"version": ""}, "Choose a model version."),
    ("negative replicas", {"replicas": "-1"}, "Use 0 to 50 replicas."),
    ("too many replicas", {"replicas": "51"}, "Use 0 to 50 replicas."),
    ("replicas not a number", {"replicas": "two"}, "Give a whole number of replicas"),
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
    ("upper case name", {"name": "Iris"}, 'e.g. "iris".'),
    ("traversal name", {"name": "../../etc"}, 'e.g. "etc".'),
    ("unknown job", {"job": "clustering"}, "Choose classification or regression."),
    ("zero features", {"input_size": "0"}, "Use 1 to 10000 features"),
    ("features not a number", {"input_size": "four"}, "Give the number of features"),
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
