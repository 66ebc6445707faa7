"""Deleting and archiving what users no longer need: a stopped deployment (its name becomes
free), a version nothing serves or can roll back to (its artifact goes too), a model with no
versions. Archiving hides a stopped deployment or a model from the lists without deleting it.

Each refusal says why in plain words and what to do first; each change is an audit event that
outlives the record (AuditEvent).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from deployments import constants as st
from deployments.models import AuditEvent, Deployment, ModelVersion, RegisteredModel
from deployments.registry.versions import VersionInUse, delete_version


class RemovalRefused(Exception):
    """The record cannot be deleted or archived now; `code` is an HTTP status."""

    def __init__(self, message: str, code: int = 409) -> None:
        super().__init__(message)
        self.code = code


def _stopped_first(deployment: Deployment, verb: str) -> RemovalRefused:
    deployment.refresh_from_db(fields=["status"])
    return RemovalRefused(
        f"The deployment {deployment.name} is {deployment.status}; undeploy it first (only a "
        f"stopped deployment can be {verb})."
    )


def delete_deployment(deployment: Deployment, actor: object | None = None) -> None:
    """Delete a stopped deployment and its history; its name and port become free."""
    with transaction.atomic():
        # One conditional DELETE: a deploy that wins the race keeps the deployment.
        deleted, _ = Deployment.objects.filter(pk=deployment.pk, status__in=st.DELETABLE).delete()
        if not deleted:
            raise _stopped_first(deployment, "deleted")
        version = deployment.model_version
        AuditEvent.add(
            "deployment.delete",
            f"deployment {deployment.name}",
            f"deleted (it last served {version.model.name} v{version.version})",
            actor,
        )


def archive_deployment(
    deployment: Deployment, archived: bool = True, actor: object | None = None
) -> Deployment:
    """Hide a stopped deployment from the dashboard (or show it again)."""
    with transaction.atomic():
        rows = Deployment.objects.filter(pk=deployment.pk)
        if archived:
            rows = rows.filter(status__in=st.ARCHIVABLE)
        if not rows.update(archived_at=timezone.now() if archived else None):
            raise _stopped_first(deployment, "archived")
        action = "archive" if archived else "unarchive"
        deployment.record(action, f"{action}d", actor)
        AuditEvent.add(f"deployment.{action}", f"deployment {deployment.name}", f"{action}d", actor)
    deployment.refresh_from_db()
    return deployment


def delete_model_version(version: ModelVersion, actor: object | None = None) -> None:
    """Delete a version no deployment serves or can roll back to, and its artifact."""
    try:
        delete_version(version)
    except VersionInUse as exc:
        raise RemovalRefused(f"Version {exc}.") from None
    AuditEvent.add(
        "version.delete",
        f"model {version.model.name} v{version.version}",
        f"deleted with its artifact ({version.sha256[:12]})",
        actor,
    )


def delete_model(model: RegisteredModel, actor: object | None = None) -> None:
    """Delete a model that has no versions left."""
    with transaction.atomic():
        locked = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        count = locked.versions.count()
        if count:
            raise RemovalRefused(
                f"The model {model.name} has {count} version(s); delete them first (a version "
                "in use by a deployment cannot be deleted), or archive the model to hide it."
            )
        locked.delete()
        AuditEvent.add("model.delete", f"model {model.name}", "deleted", actor)


def archive_model(
    model: RegisteredModel, archived: bool = True, actor: object | None = None
) -> RegisteredModel:
    """Hide a model from the models list (or show it again); its versions stay deployable."""
    with transaction.atomic():
        RegisteredModel.objects.filter(pk=model.pk).update(
            archived_at=timezone.now() if archived else None
        )
        action = "archive" if archived else "unarchive"
        AuditEvent.add(f"model.{action}", f"model {model.name}", f"{action}d", actor)
    model.refresh_from_db()
    return model
