"""What users (and the canary analysis) ask of a deployment's traffic: set or end a canary or a
shadow, promote the canary, set autoscaling.

Each change is recorded like a version change (`lifecycle.change`): a guarded move to
`pending` with an event naming who asked, then the deploy task applies it through the runtime.
The web process never calls the runtime.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from deployments import constants as st
from deployments.enqueue import DEPLOY, enqueue_on_commit
from deployments.lifecycle import LifecycleError
from deployments.models import Deployment, ModelVersion

# Marks "not given" apart from an explicit None (which ends a canary or shadow).
UNSET: Any = object()


def _guard(deployment: Deployment) -> dict[str, object]:
    """The traffic fields as read: a change applies only if nobody changed them meanwhile."""
    return {
        "model_version_id": deployment.model_version_id,
        "canary_version_id": deployment.canary_version_id,
        "canary_weight": deployment.canary_weight,
        "shadow_version_id": deployment.shadow_version_id,
        "autoscaling": deployment.autoscaling,
    }


def refusal(deployment: Deployment, *, split: bool = False, autoscale: bool = False) -> str:
    """Why this console's runtime cannot do what is asked, or '' when it can."""
    if autoscale and settings.DEPLOY_RUNTIME != "kubernetes":
        return st.LOCAL_NO_AUTOSCALING
    if split and settings.DEPLOY_RUNTIME == "kubernetes" and not settings.K8S_GATEWAY:
        return st.NO_GATEWAY
    return ""


def _apply(
    deployment: Deployment, message: str, fields: dict[str, Any], actor: object | None, action: str
) -> Deployment:
    if deployment.status in st.IN_FLIGHT:
        raise LifecycleError(f"{deployment.name} is {deployment.status}; wait until it settles")
    guard = _guard(deployment)
    if guard["autoscaling"] is None:
        # A JSON null is not matched by `= NULL`; the column is SQL NULL then.
        guard.pop("autoscaling")
        guard["autoscaling__isnull"] = True
    with transaction.atomic():
        if deployment.status == st.STOPPED:
            if not deployment.update_while(st.STOPPED, guard=guard, **fields):
                raise LifecycleError(f"{deployment.name} changed meanwhile; reload and retry")
            deployment.record(action, message, actor)
            return deployment
        if not deployment.move_to(
            st.PENDING,
            message,
            actor=actor,
            action=action,
            only_from=st.CHANGEABLE,
            guard=guard,
            **fields,
        ):
            raise LifecycleError(f"{deployment.name} changed meanwhile; reload and retry")
        enqueue_on_commit(DEPLOY, deployment.pk)
    return deployment


def _same_model(deployment: Deployment, version: ModelVersion, field: str) -> None:
    if version.model_id != deployment.model_version.model_id:
        raise LifecycleError(
            f"{field}: version {version} belongs to another model than {deployment.model_version}",
            code=400,
        )
    if version.pk == deployment.model_version_id:
        raise LifecycleError(
            f"{field}: version {version.version} is already the primary; choose another version",
            code=400,
        )


def change_traffic(
    deployment: Deployment,
    *,
    canary: ModelVersion | None = UNSET,
    weight: int | None = None,
    analysis: dict[str, Any] | None = None,
    shadow: ModelVersion | None = UNSET,
    autoscaling: dict[str, int] | None = UNSET,
    actor: object | None = None,
    action: str = "traffic",
) -> Deployment:
    """Set (a version) or end (None) the canary and/or the shadow, or set autoscaling; fields
    left UNSET keep their value. The event says what changed, from what, and who asked."""
    fields: dict[str, Any] = {}
    parts: list[str] = []
    if canary is not UNSET:
        if canary is None:
            if deployment.canary_version_id:
                fields.update(canary_version=None, canary_weight=0, canary_analysis=None)
                parts.append(f"canary v{deployment.canary_version.version} ended")  # type: ignore[union-attr]
        else:
            _same_model(deployment, canary, "canary")
            if refusal(deployment, split=True):
                raise LifecycleError(refusal(deployment, split=True), code=400)
            new_weight = weight if weight is not None else 0
            if analysis is not None:
                new_weight = 0  # the analysis starts at nothing and takes its first step itself
            fields.update(canary_version=canary, canary_weight=new_weight, canary_analysis=analysis)
            if canary.pk != deployment.canary_version_id:
                parts.append(f"canary v{canary.version} at {new_weight}%")
                fields["traffic_state"] = {}
            elif new_weight != deployment.canary_weight:
                parts.append(
                    f"canary v{canary.version} weight {deployment.canary_weight}% -> {new_weight}%"
                )
            if analysis is not None and analysis != deployment.canary_analysis:
                parts.append(f"automatic analysis: {describe_analysis(analysis)}")
                fields["traffic_state"] = {}
    if shadow is not UNSET:
        if shadow is None:
            if deployment.shadow_version_id:
                fields["shadow_version"] = None
                parts.append(f"shadow v{deployment.shadow_version.version} ended")  # type: ignore[union-attr]
        elif shadow.pk != deployment.shadow_version_id:
            _same_model(deployment, shadow, "shadow")
            if refusal(deployment, split=True):
                raise LifecycleError(refusal(deployment, split=True), code=400)
            fields["shadow_version"] = shadow
            parts.append(f"shadow v{shadow.version} gets a copy of every request")
    if autoscaling is not UNSET and autoscaling != deployment.autoscaling:
        if autoscaling is not None and refusal(deployment, autoscale=True):
            raise LifecycleError(refusal(deployment, autoscale=True), code=400)
        fields["autoscaling"] = autoscaling
        parts.append(
            "autoscaling off"
            if autoscaling is None
            else f"autoscaling {autoscaling['min']}-{autoscaling['max']} replicas at "
            f"{autoscaling['target_cpu']}% CPU"
        )
    if not parts:
        return deployment
    return _apply(deployment, "; ".join(parts), fields, actor, action)


def promote(deployment: Deployment, actor: object | None = None, reason: str = "") -> Deployment:
    """The canary becomes the primary (all requests); the old primary can be rolled back to."""
    if not deployment.canary_version_id:
        raise LifecycleError(f"{deployment.name} has no canary to promote", code=400)
    canary = deployment.canary_version
    assert canary is not None
    fields: dict[str, Any] = {
        "previous_version": deployment.model_version,
        "model_version": canary,
        "canary_version": None,
        "canary_weight": 0,
        "canary_analysis": None,
        "traffic_state": {},
    }
    message = f"canary v{canary.version} promoted: version {deployment.model_version.version} -> "
    message += f"{canary.version} for all requests"
    if reason:
        message += f" ({reason})"
    return _apply(deployment, message, fields, actor, "promote")


def describe_analysis(analysis: dict[str, Any]) -> str:
    steps = ", ".join(f"{s}%" for s in analysis["steps"])
    return (
        f"steps {steps} every {analysis['interval_s']:g} s while errors stay at most "
        f"{analysis['max_error_rate']:.2%} and p99 at most {analysis['max_p99_ms']:g} ms"
    )


def analysis_verdict(
    deployment: Deployment, weight: int, message: str, *, failed: bool = False
) -> Deployment | None:
    """The canary analysis moves the canary's weight (an event says why); None when the
    deployment changed meanwhile, so the verdict no longer applies."""
    action = "analysis-rollback" if failed else "analysis"
    try:
        return _apply(deployment, message, {"canary_weight": weight}, None, action)
    except LifecycleError:
        return None
