"""Deleting and archiving (deployments/removal.py): what may go and what must stay, the plain
words of a refusal (naming the deployment that uses a version), the freed name, the audit
events that outlive the records, and the same rules through the API and the UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import constants as st
from deployments import lifecycle, removal
from deployments.models import AuditEvent, Deployment, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", sorted(set(st.STATUSES) - st.DELETABLE))
def test_only_a_stopped_deployment_can_be_deleted(make_deployment, status) -> None:
    deployment = make_deployment(status)
    with pytest.raises(removal.RemovalRefused) as refused:
        removal.delete_deployment(deployment)
    assert str(refused.value) == (
        f"The deployment iris-prod is {status}; undeploy it first (only a stopped deployment "
        "can be deleted)."
    )
    assert Deployment.objects.filter(pk=deployment.pk).exists()


def test_deleting_frees_the_name_and_the_audit_outlives_it(
    make_deployment, on_commit_tasks
) -> None:
    deployment = make_deployment(st.STOPPED, port=20001)
    deployment.record("create", "seeded")
    removal.delete_deployment(deployment)
    assert not Deployment.objects.filter(name="iris-prod").exists()
    event = AuditEvent.objects.get()
    assert (event.action, event.target) == ("deployment.delete", "deployment iris-prod")
    assert "iris v1" in event.message
    with on_commit_tasks():
        again = lifecycle.create_deployment(name="iris-prod", version=deployment.model_version)
    assert again.status == st.PENDING


def test_archive_needs_stopped_and_deploying_again_unarchives(
    make_deployment, on_commit_tasks
) -> None:
    running = make_deployment(st.RUNNING, name="live")
    with pytest.raises(removal.RemovalRefused, match="can be archived"):
        removal.archive_deployment(running)
    stopped = make_deployment(st.STOPPED, name="done", version=running.model_version)
    assert removal.archive_deployment(stopped).archived_at is not None
    assert removal.archive_deployment(stopped, archived=False).archived_at is None
    removal.archive_deployment(stopped)
    with on_commit_tasks():
        lifecycle.deploy(stopped)
    stopped.refresh_from_db()
    assert stopped.archived_at is None
    assert [e.action for e in AuditEvent.objects.order_by("id")] == [
        "deployment.archive",
        "deployment.unarchive",
        "deployment.archive",
    ]


def _with_blob(version: ModelVersion) -> Path:
    path = Path(version.uri.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"artifact")
    return path


def test_a_version_in_use_or_kept_for_rollback_stays(make_version, make_deployment) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    make_deployment(st.STOPPED, name="serves-v2", version=v2, previous_version=v1)
    for version, user in ((v1, "serves-v2"), (v2, "serves-v2")):
        with pytest.raises(removal.RemovalRefused) as refused:
            removal.delete_model_version(version)
        assert f"used by deployment(s) {user}" in str(refused.value)
        assert str(refused.value).endswith("delete or change those deployments first.")


def test_an_unused_version_goes_with_its_blob_then_the_model(make_version) -> None:
    version = make_version()
    blob = _with_blob(version)
    model = version.model
    with pytest.raises(removal.RemovalRefused, match="has 1 version"):
        removal.delete_model(model)
    removal.delete_model_version(version)
    assert not blob.exists() and not ModelVersion.objects.exists()
    removal.delete_model(model)
    assert not RegisteredModel.objects.exists()
    assert [e.action for e in AuditEvent.objects.order_by("id")] == [
        "version.delete",
        "model.delete",
    ]


@pytest.fixture
def deployer_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="boss-password-1"))
    return client


def test_api_refuses_in_plain_words_and_deletes(make_deployment, deployer_client) -> None:
    make_deployment(st.RUNNING)
    refused = deployer_client.delete("/api/deployments/iris-prod/")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(
        "The deployment iris-prod is running; undeploy it first"
    )
    Deployment.objects.filter(name="iris-prod").update(status=st.STOPPED)
    assert deployer_client.post("/api/deployments/iris-prod/archive/").json()["archived_at"]
    assert deployer_client.delete("/api/deployments/iris-prod/").status_code == 204
    in_use = deployer_client.delete("/api/models/iris/")
    assert in_use.status_code == 409 and "delete them first" in in_use.json()["detail"]


def test_viewers_cannot_delete(make_deployment) -> None:
    make_deployment(st.STOPPED)
    viewer = Client()
    viewer.force_login(User.objects.create_user("look", password="look-password-1"))
    assert viewer.delete("/api/deployments/iris-prod/").status_code == 403
    assert viewer.post("/deployments/iris-prod/delete/").status_code == 403
    assert Deployment.objects.filter(name="iris-prod").exists()


def test_ui_delete_says_which_deployment_uses_a_version(make_deployment, deployer_client) -> None:
    make_deployment(st.STOPPED)
    page = deployer_client.post("/models/iris/versions/1/delete/", follow=True)
    assert (
        "Version iris v1 is used by deployment(s) iris-prod (serving it or able to roll back "
        "to it); delete or change those deployments first."
    ) in page.content.decode()
    gone = deployer_client.post("/deployments/iris-prod/delete/", follow=True)
    assert (
        "Deployment iris-prod deleted; the name iris-prod is free again." in gone.content.decode()
    )
