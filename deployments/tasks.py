"""Celery tasks: thin wrappers that move a deployment through the runtime.

Tasks take primary keys, are idempotent (a retried or re-delivered task converges to the same
state) and run with acks_late, so a worker killed mid-task leaves the message to be redone.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.core.cache import cache

from deployments import constants as st
from deployments.models import Deployment
from deployments.runtimes import get_runtime
from deployments.runtimes.base import Observation, Runtime, RuntimeFailure
from deployments.scrub import scrub
from deployments.specs import serving_spec

log = logging.getLogger(__name__)

RETRY = {"max_retries": 5, "retry_backoff": True, "retry_backoff_max": 60}
# A fresh deploy is looked at this often until it is ready (a look is one cheap observe).
WATCH_INTERVAL_SECONDS = 0.25
# How long a watch counts as following its deploy after its last look.
WATCH_ALIVE_SECONDS = 10


def _get(deployment_id: int) -> Deployment | None:
    return (
        Deployment.objects.select_related("model_version__model").filter(pk=deployment_id).first()
    )


def record_observation(deployment: Deployment, seen: Observation) -> None:
    """Bring the record in line with what the runtime reports."""
    status = seen.status
    if status == st.STOPPED and deployment.status in st.ACTIVE:
        status = st.FAILED
        seen.reason = "the serving process is gone: " + (seen.reason or "not found")
    fields: dict[str, Any] = {
        "replicas_ready": seen.replicas_ready,
        "endpoint": seen.endpoint or deployment.endpoint,
        "restarts": seen.restarts,
    }
    if status != deployment.status:
        deployment.move_to(status, seen.reason, action="status", **fields)
    elif (
        seen.reason != deployment.status_reason
        or seen.replicas_ready != deployment.replicas_ready
        or seen.restarts != deployment.restarts
    ):
        deployment.update_while(status, status_reason=seen.reason, **fields)
    for message in seen.events:
        deployment.record("runtime", message)


@shared_task(bind=True, **RETRY)
def deploy_deployment(self: Task, deployment_id: int) -> None:
    deployment = _get(deployment_id)
    if deployment is None:
        return
    if deployment.status == st.PENDING:
        claimed = deployment.move_to(
            st.DEPLOYING, "applying to the runtime", action="deploying", only_from={st.PENDING}
        )
    else:
        # A redelivered or reconciled task finds the deploy already claimed: apply again
        # (idempotent) without a new event, keeping the original deadline.
        claimed = deployment.status == st.DEPLOYING
    if not claimed:
        log.info("deploy of %s skipped: it is %s", deployment.name, deployment.status)
        return
    runtime = get_runtime()
    try:
        if runtime.reserves_ports:
            deployment.reserve_port(runtime.pick_port)
        spec = serving_spec(deployment)
        endpoint = runtime.apply(spec)
        grpc_endpoint = runtime.grpc_endpoint(spec)
    except RuntimeFailure as exc:
        if exc.permanent or self.request.retries >= self.max_retries:
            deployment.move_to(st.FAILED, str(exc), action="failed", only_from={st.DEPLOYING})
            return
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
    except Exception as exc:  # an unexpected error must not leave the deployment stuck
        log.exception("deploy of %s failed", deployment.name)
        deployment.move_to(
            st.FAILED,
            f"deploy failed: {type(exc).__name__}: {exc}",
            action="failed",
            only_from={st.DEPLOYING},
        )
        return
    if not deployment.update_while(st.DEPLOYING, endpoint=endpoint, grpc_endpoint=grpc_endpoint):
        if deployment.status in (st.STOPPING, st.STOPPED):
            # Undeployed while we were applying: the undeploy may have found nothing to stop
            # yet, so stop what we just started rather than leave it serving unowned.
            runtime.remove(deployment.name)
        return
    deadline = deployment.updated_at.timestamp() + settings.DEPLOY_TIMEOUT_SECONDS
    watch_deployment.apply_async(args=[deployment.pk, deadline], countdown=WATCH_INTERVAL_SECONDS)


def _watch_key(deployment_id: int) -> str:
    return f"deployment-watch:{deployment_id}"


@shared_task
def watch_deployment(deployment_id: int, deadline: float) -> None:
    """Follow a fresh deploy until it is ready, fails, or runs out of time."""
    deployment = _get(deployment_id)
    if deployment is None or deployment.status != st.DEPLOYING:
        return
    # Tells the reconcile that this deploy is followed, so it does not start another.
    cache.set(_watch_key(deployment_id), time.time(), timeout=WATCH_ALIVE_SECONDS)
    seen = get_runtime().observe(serving_spec(deployment))
    if seen.status == st.DEPLOYING and time.time() > deadline:
        seen.status = st.FAILED
        seen.reason = (
            f"not ready within {settings.DEPLOY_TIMEOUT_SECONDS} s: "
            f"{seen.reason or 'no reason reported'}"
        )
    record_observation(deployment, seen)
    if seen.status == st.DEPLOYING:
        watch_deployment.apply_async(
            args=[deployment_id, deadline], countdown=WATCH_INTERVAL_SECONDS
        )


@shared_task(bind=True, **RETRY)
def undeploy_deployment(self: Task, deployment_id: int) -> None:
    deployment = _get(deployment_id)
    if deployment is None or deployment.status != st.STOPPING:
        return
    runtime = get_runtime()
    try:
        runtime.remove(deployment.name)
    except RuntimeFailure as exc:
        if exc.permanent or self.request.retries >= self.max_retries:
            deployment.move_to(
                st.FAILED, f"undeploy failed: {exc}", action="failed", only_from={st.STOPPING}
            )
            return
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
    deployment.move_to(
        st.STOPPED,
        "",
        action="stopped",
        only_from={st.STOPPING},
        endpoint="",
        grpc_endpoint="",
        replicas_ready=0,
    )


def sync_deployment(deployment: Deployment, runtime: Runtime | None = None) -> None:
    """Reconcile one deployment with its runtime; also restarts work a lost task left behind
    (a worker killed mid-task: with acks_late the broker redelivers eventually, this is sooner).
    """
    runtime = runtime or get_runtime()
    age = time.time() - deployment.updated_at.timestamp()
    stale = age > settings.RECONCILE_STALE_SECONDS
    if deployment.status == st.PENDING:
        if stale:  # the deploy task was lost (for example the worker died before taking it)
            log.warning("redoing the lost deploy of %s", deployment.name)
            deploy_deployment.delay(deployment.pk)
        return
    if deployment.status == st.STOPPING:
        if stale:
            log.warning("redoing the lost undeploy of %s", deployment.name)
            undeploy_deployment.delay(deployment.pk)
        return
    if deployment.status in st.FINAL:
        return
    if deployment.status == st.DEPLOYING:
        if stale and cache.get(_watch_key(deployment.pk)) is None:
            # Nobody follows this deploy: its task or its watch died with a worker. Applying
            # again is idempotent, and the watch keeps the original deadline.
            log.warning("redoing the interrupted deploy of %s", deployment.name)
            deploy_deployment.delay(deployment.pk)
        return
    spec = serving_spec(deployment)
    if runtime.reapply_on_sync:
        runtime.apply(spec)  # repairs drift, such as a deleted Service
    elif revived := runtime.revive(spec):
        deployment.record("runtime", revived)
    seen = runtime.observe(spec)
    if deployment.status == st.FAILED and seen.status != st.RUNNING:
        return  # keep the reason that explains the failure
    record_observation(deployment, seen)


@shared_task
def sync_all_deployments() -> None:
    """Periodic (Celery beat): make every record tell the truth, and stop orphans."""
    runtime = get_runtime()
    live = Deployment.objects.exclude(status__in=st.FINAL).select_related("model_version__model")
    for deployment in live:
        try:
            sync_deployment(deployment, runtime)
        except Exception:
            log.exception("status sync of %s failed", deployment.name)
    active = set(Deployment.objects.exclude(status__in=st.FINAL).values_list("name", flat=True))
    for orphan in runtime.list_deployed() - active:
        log.warning("removing %s: the runtime runs it but no active deployment wants it", orphan)
        runtime.remove(orphan)


@shared_task(ignore_result=True)
def collect_logs(deployment_id: int, tail: int) -> None:
    """Read a deployment's last `tail` log lines into the cache for the web process
    (deployments/logs.py), with secrets scrubbed: every viewer of the deployment may read them."""
    deployment = _get(deployment_id)
    if deployment is None:
        return
    try:
        lines = get_runtime().logs(deployment.name, tail)
    except RuntimeFailure as exc:
        lines = [f"(the logs cannot be read now: {exc})"]
    key = st.log_cache_key(deployment_id, tail)
    lines = [scrub(line) for line in lines]
    cache.set(key, {"at": time.time(), "lines": lines}, st.LOG_KEEP_SECONDS)
    cache.delete(f"{key}:asked")


@shared_task(ignore_result=True)
def scrape_metrics() -> None:
    """Periodic (Celery beat): one metrics point per running deployment (not with Prometheus)."""
    from deployments.observability.metrics import scrape_all

    scrape_all()


@shared_task(ignore_result=True)
def prune_metrics() -> None:
    """Periodic: roll old metrics points up into minutes and delete the oldest."""
    from deployments.observability.metrics import prune

    prune()


@shared_task(ignore_result=True)
def prune_prediction_logs() -> None:
    """Periodic: delete the local prediction log's day folders past their retention."""
    from deployments.observability.prediction_log import prune

    prune()


@shared_task(ignore_result=True)
def compute_drift() -> None:
    """Periodic: the drift of every running deployment whose version has reference rows."""
    from deployments.observability.drift import DriftUnavailable, deployment_drift

    window = st.WINDOWS[st.DRIFT_WINDOW_DEFAULT]
    running = Deployment.objects.filter(status__in=(st.RUNNING, st.DEGRADED)).select_related(
        "model_version__model"
    )
    for deployment in running:
        try:
            deployment_drift(deployment, window)
        except DriftUnavailable:
            continue
        except Exception:
            log.exception("drift of %s failed", deployment.name)


@shared_task
def traffic_tick() -> None:
    """Periodic (Celery beat): each version's metrics of deployments with a canary or shadow,
    and a step of their canary analysis (deployments/traffic/analysis.py)."""
    from django.db.models import Q

    from deployments.traffic.analysis import tick

    split = Q(canary_version__isnull=False) | Q(shadow_version__isnull=False)
    wanted = Deployment.objects.filter(split, status=st.RUNNING).select_related(
        "model_version__model", "canary_version", "shadow_version"
    )
    for deployment in wanted:
        try:
            tick(deployment)
        except Exception:
            log.exception("traffic tick of %s failed", deployment.name)
