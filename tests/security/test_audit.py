"""The audit trail: every state-changing action on a deployment records who, what, when and
from where (client address, and whether through the API, the UI or the worker itself); the API
and the admin show it and neither can change it."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.api import wait_for_status
from tests.support.ui import session_client, ui_urls

pytestmark = pytest.mark.integration

NAME = "audit-dep"


def _events(client: httpx.Client) -> list[dict]:
    response = client.get(f"/api/deployments/{NAME}/events/", params={"limit": 200})
    assert response.status_code == 200
    return response.json()["results"]


@pytest.fixture(scope="module")
def audited(console, iris_model) -> list[dict]:
    """Create through the API (with a forged X-Forwarded-For), undeploy through the UI."""
    started = datetime.now(UTC) - timedelta(seconds=1)
    api = console.client("deployer")
    response = api.post(
        "/api/deployments/",
        json={"name": NAME, "model": iris_model.model, "version": 1},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 202, response.text
    wait_for_status(api, NAME, {"running", "failed"})

    ui = session_client(console, "deployer")
    urls = ui_urls(console, NAME, iris_model.model)
    ui.get(urls["deployment"])
    response = ui.post(
        urls["undeploy"],
        headers={
            "X-CSRFToken": ui.cookies["csrftoken"],
            "Referer": console.url + urls["deployment"],
        },
    )
    assert response.status_code == 302, response.text[:500]
    wait_for_status(api, NAME, {"stopped"})
    events = _events(api)
    for event in events:
        assert started <= datetime.fromisoformat(event["created_at"]) <= datetime.now(UTC)
    return events


def test_api_actions_record_who_and_from_where(audited):
    create = [e for e in audited if e["action"] == "create"]
    assert len(create) == 1
    assert create[0]["actor"] == "deployer"
    assert create[0]["via"] == "api"
    # The forged header is not believed: no proxy is configured (TRUSTED_PROXY_COUNT=0).
    assert create[0]["source_ip"] == "127.0.0.1"
    assert create[0]["status"] == "pending"
    assert "version" in create[0]["message"] or "v1" in create[0]["message"]


def test_ui_actions_record_who_and_from_where(audited):
    undeploy = [e for e in audited if e["action"] == "undeploy"]
    assert len(undeploy) == 1
    assert undeploy[0]["actor"] == "deployer"
    assert undeploy[0]["via"] == "ui"
    assert undeploy[0]["source_ip"] == "127.0.0.1"
    assert undeploy[0]["status"] == "stopping"


def test_what_the_worker_did_is_recorded_as_the_system(audited):
    by_worker = [e for e in audited if e["via"] == "worker"]
    assert {"deploying", "stopped"} <= {e["action"] for e in by_worker}
    assert {e["status"] for e in by_worker} >= {"deploying", "running", "stopped"}
    assert all(e["actor"] == "" and e["source_ip"] is None for e in by_worker)
    # Newest first, as documented.
    times = [e["created_at"] for e in audited]
    assert times == sorted(times, reverse=True)


def test_the_audit_cannot_be_edited_through_the_api(console, audited):
    admin = console.client("admin")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = admin.request(
            method, f"/api/deployments/{NAME}/events/", json={"message": "rewritten"}
        )
        assert response.status_code == 405, (method, response.status_code)
    assert _events(admin) == audited


def test_the_audit_cannot_be_edited_through_the_admin_or_the_orm(console, audited):
    admin = session_client(console, "admin")
    assert admin.get("/admin/deployments/deploymentevent/").status_code == 404
    page = admin.get(f"/admin/deployments/deployment/?q={NAME}")
    assert page.status_code == 200
    result = console.shell(
        f"""
import json
from deployments.models import DeploymentEvent
event = DeploymentEvent.objects.filter(deployment__name="{NAME}", action="create").get()
event.message = "rewritten"
try:
    event.save()
    outcome = "saved"
except PermissionError as exc:
    outcome = str(exc)
print("RESULT=" + json.dumps(outcome))
"""
    )
    assert result == "audit events cannot be changed once written"
    assert _events(console.client("admin")) == audited


def test_the_actor_survives_the_deletion_of_the_user(console, iris_model, audited):
    console.shell(
        """
import json
from django.contrib.auth.models import Group, User
user = User.objects.create_user(username="audit-leaver", password="leaver-password-1")
user.groups.add(Group.objects.get(name="deployer"))
print("RESULT=" + json.dumps(user.pk))
"""
    )
    leaver = session_client(console, None)
    token = leaver.post(
        "/api/token/", json={"username": "audit-leaver", "password": "leaver-password-1"}
    ).json()["token"]
    patch = leaver.patch(
        f"/api/deployments/{NAME}/",
        json={"replicas": 2},
        headers={"Authorization": f"Token {token}"},
    )
    assert patch.status_code == 202, patch.text
    console.shell(
        """
import json
from django.contrib.auth.models import User
User.objects.filter(username="audit-leaver").delete()
print("RESULT=" + json.dumps(True))
"""
    )
    update = [e for e in _events(console.client("admin")) if e["action"] == "update"]
    assert len(update) == 1
    assert update[0]["actor"] == "audit-leaver"
    assert update[0]["message"] == "replicas 1 -> 2"


def test_the_audit_is_visible_in_the_ui(console, iris_model, audited):
    viewer = session_client(console, "viewer")
    page = viewer.get(ui_urls(console, NAME, iris_model.model)["deployment"])
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "by deployer via the API from 127.0.0.1" in text
    assert "by deployer via the UI from 127.0.0.1" in text
    assert "by the system" in text
