"""What users ask of deployments: create, deploy, undeploy, change, roll back.

Each function records the intent (a guarded status change and an event) and enqueues the Celery
task that does the work after the transaction commits. Views and API views call only these.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from deployments import constants as st
from deployments.enqueue import DEPLOY, UNDEPLOY, enqueue, enqueue_on_commit
from deployments.models import Deployment, ModelVersion


class LifecycleError(Exception):
    """The request does not fit the deployment's current state; `code` is an HTTP status."""

    def __init__(self, message: str, code: int = 409) -> None:
        super().__init__(message)
        self.code = code


def create_deployment(
    *,
    name: str,
    version: ModelVersion,
    replicas: int = st.DEFAULT_REPLICAS,
    actor: object | None = None,
    log_sample: float | None = None,
    **resources: str,
) -> Deployment:
    """Record a new deployment as `pending` and start deploying it."""
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                name=name,
                model_version=version,
                replicas=replicas,
                status=st.PENDING,
                log_sample=log_sample,
                created_by=actor if getattr(actor, "pk", None) else None,  # type: ignore[misc]
                **resources,
            )
            deployment.record("create", f"created with {version} and {replicas} replica(s)", actor)
            enqueue_on_commit(DEPLOY, deployment.pk)
    except IntegrityError:
        raise LifecycleError(f"a deployment named {name!r} already exists") from None
    return deployment


def deploy(deployment: Deployment, actor: object | None = None) -> Deployment:
    """(Re)deploy a stopped or failed deployment."""
    with transaction.atomic():
        if not deployment.move_to(
            st.PENDING, "deploy requested", actor=actor, action="deploy", only_from=st.DEPLOYABLE
        ):
            raise LifecycleError(
                f"{deployment.name} is {deployment.status}; it can be deployed only when "
                f"{', '.join(sorted(st.DEPLOYABLE))}"
            )
        # Deployed again, it is no longer archived (the dashboard shows what serves).
        Deployment.objects.filter(pk=deployment.pk).update(archived_at=None)
        enqueue_on_commit(DEPLOY, deployment.pk)
    return deployment


def undeploy(deployment: Deployment, actor: object | None = None) -> Deployment:
    """Stop serving. Undeploying a stopped deployment is a no-op, not an error."""
    if deployment.status not in st.UNDEPLOYABLE:
        return deployment
    with transaction.atomic():
        if not deployment.move_to(
            st.STOPPING, "undeploy requested", actor=actor, action="undeploy"
        ):
            if deployment.status not in st.UNDEPLOYABLE:
                return deployment
            raise LifecycleError(f"{deployment.name} is {deployment.status}; try again")
        enqueue_on_commit(UNDEPLOY, deployment.pk)
    return deployment


def change(
    deployment: Deployment,
    *,
    version: ModelVersion | None = None,
    replicas: int | None = None,
    log_sample: float | None = None,
    actor: object | None = None,
    action: str = "update",
) -> Deployment:
    """Roll the deployment to another version, replica count and/or prediction-log sample."""
    if deployment.status in st.IN_FLIGHT:
        raise LifecycleError(f"{deployment.name} is {deployment.status}; wait until it settles")
    parts = []
    fields: dict[str, Any] = {}
    if version is not None and version.pk != deployment.model_version_id:
        if version.model_id != deployment.model_version.model_id:
            raise LifecycleError(
                f"version {version} belongs to another model than {deployment.model_version}",
                code=400,
            )
        fields["previous_version"] = deployment.model_version
        fields["model_version"] = version
        parts.append(f"version {deployment.model_version.version} -> {version.version}")
    if replicas is not None and replicas != deployment.replicas:
        fields["replicas"] = replicas
        parts.append(f"replicas {deployment.replicas} -> {replicas}")
    if log_sample is not None and log_sample != deployment.log_sample:
        fields["log_sample"] = log_sample
        before = "default" if deployment.log_sample is None else f"{deployment.log_sample:g}"
        parts.append(f"log sample {before} -> {log_sample:g}")
    if not parts:
        return deployment
    message = "; ".join(parts)
    with transaction.atomic():
        if deployment.status == st.STOPPED:
            # A stopped deployment only changes its record; it starts again on deploy.
            changed = deployment.update_while(
                st.STOPPED,
                guard=_change_guard(deployment),
                **fields,
            )
            if not changed:
                raise LifecycleError(f"{deployment.name} changed meanwhile; reload and retry")
            deployment.record(action, message, actor)
            return deployment
        if not deployment.move_to(
            st.PENDING,
            message,
            actor=actor,
            action=action,
            only_from=st.CHANGEABLE,
            guard=_change_guard(deployment),
            **fields,
        ):
            raise LifecycleError(f"{deployment.name} changed meanwhile; reload and retry")
        enqueue_on_commit(DEPLOY, deployment.pk)
    return deployment


def _change_guard(deployment: Deployment) -> dict[str, Any]:
    """What a change was decided on: a concurrent change of any of it refuses this one."""
    return {
        "model_version_id": deployment.model_version_id,
        "replicas": deployment.replicas,
        "log_sample": deployment.log_sample,
    }


def rollback(deployment: Deployment, actor: object | None = None) -> Deployment:
    """Go back to the version served before the last version change."""
    if deployment.previous_version is None:
        raise LifecycleError(f"{deployment.name} has no previous version to roll back to")
    return change(deployment, version=deployment.previous_version, actor=actor, action="rollback")


def resume(deployment: Deployment) -> bool:
    """After a console restart: redeploy a deployment that should serve but is not running."""
    from deployments.runtimes import get_runtime
    from deployments.specs import serving_spec

    if deployment.status == st.PENDING:
        # Its deploy task may have been lost with the broker's messages: queue it again (the
        # task claims `pending` once, so a second copy does nothing).
        enqueue(DEPLOY, deployment.pk)
        return True
    seen = get_runtime().observe(serving_spec(deployment))
    if seen.status == st.RUNNING:
        return False
    with transaction.atomic():
        if deployment.move_to(
            st.PENDING,
            "restarting after a console restart",
            action="resume",
            only_from=st.RESUMABLE,
        ):
            enqueue_on_commit(DEPLOY, deployment.pk)
            return True
    return False


def resume_all() -> list[str]:
    """Resume every deployment that was meant to be serving; the names of those redeployed."""
    wanted = Deployment.objects.filter(status__in=st.RESUMABLE | {st.PENDING})
    return [d.name for d in wanted.select_related("model_version__model") if resume(d)]
