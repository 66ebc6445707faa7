"""Deployment metrics: scraped by the worker from each running deployment's /metrics and kept
in the database with bounded retention, or queried from Prometheus when PROMETHEUS_URL is set.

Several replicas answer on one endpoint (the local runtime's shared socket, a Kubernetes
Service), and a scrape reaches one of them: each scrape asks a few times, until it has seen as
many serving processes (told apart by `serving_instance_id`) as are ready, and takes each
one's increments against what that same process reported last time.
"""

from __future__ import annotations

import logging
import math
import time

import httpx
from django.conf import settings
from django.db import transaction

from deployments import constants as st
from deployments.models import Deployment, MetricPoint, MetricScrape
from deployments.observability import series as ms

log = logging.getLogger(__name__)


def scrape_interval() -> int:
    return int(settings.METRICS_SCRAPE_SECONDS)


def _fetch(client: httpx.Client, endpoint: str) -> str:
    response = client.get(f"{endpoint}/metrics")
    response.raise_for_status()
    return response.text


def scrape_deployment(deployment: Deployment, client: httpx.Client, now: float) -> bool:
    """Scrape one deployment and store one point; False when nothing answered."""
    seen: dict[str, ms.Totals] = {}
    wanted = max(1, deployment.replicas_ready)
    for _ in range(min(3 * wanted, 12)):
        try:
            instance, totals = ms.parse_metrics(_fetch(client, deployment.endpoint))
        except (httpx.HTTPError, ValueError) as exc:
            log.info("metrics of %s not scraped: %s", deployment.name, exc)
            break
        seen[instance] = totals
        if len(seen) >= wanted:
            break
    if not seen:
        return False
    with transaction.atomic():
        state, _ = MetricScrape.objects.select_for_update().get_or_create(deployment=deployment)
        # A process unseen for an hour has gone (restarted, scaled away): forget it.
        known = {k: v for k, v in state.instances.items() if v.get("at", now) > now - 3600}
        before = {k: ms.Totals.from_json(v) for k, v in known.items()}
        seen_at = {k: v.get("at", now) for k, v in known.items()}
        counted = ms.Totals()
        for instance, totals in seen.items():
            ms.add(counted, ms.increment(before.get(instance), totals))
            before[instance] = totals
        # A process not seen this time keeps its last totals (it may answer the next scrape);
        # one gone for good is forgotten after a while.
        seen_at.update(dict.fromkeys(seen, now))
        state.instances = {k: {**v.as_json(), "at": seen_at[k]} for k, v in before.items()}
        seconds = now - state.scraped_at if state.scraped_at else float(scrape_interval())
        seconds = min(max(seconds, 0.001), 10 * scrape_interval())
        state.scraped_at = now
        state.save()
        MetricPoint.objects.create(
            deployment=deployment,
            ts=now,
            seconds=seconds,
            requests=counted.requests,
            errors=counted.errors,
            rows=counted.rows,
            latency_buckets=sorted(counted.buckets.items(), key=lambda kv: _le(kv[0])),
        )
    return True


def _le(le: str) -> float:
    return math.inf if le == "+Inf" else float(le)


def scrape_all(now: float | None = None) -> int:
    """Scrape every running deployment with an endpoint; how many answered."""
    if settings.PROMETHEUS_URL:
        return 0  # Prometheus scrapes them
    now = now or time.time()
    running = Deployment.objects.filter(status__in=(st.RUNNING, st.DEGRADED)).exclude(endpoint="")
    answered = 0
    timeout = settings.METRICS_SCRAPE_TIMEOUT_SECONDS
    with httpx.Client(timeout=timeout) as client:
        for deployment in running:
            try:
                answered += scrape_deployment(deployment, client, now)
            except Exception:
                log.exception("metrics scrape of %s failed", deployment.name)
    return answered


def prune(now: float | None = None) -> tuple[int, int]:
    """Roll scrape points older than RAW_RETENTION_SECONDS up into minute points and delete
    rollups older than ROLLUP_RETENTION_SECONDS; (points rolled up, rollups deleted)."""
    now = now or time.time()
    step = st.ROLLUP_STEP_SECONDS
    cutoff = math.floor((now - st.RAW_RETENTION_SECONDS) / step) * step
    rolled = 0
    old = MetricPoint.objects.filter(rolled_up=False, ts__lte=cutoff)
    for deployment_id in old.values_list("deployment_id", flat=True).distinct():
        with transaction.atomic():
            rows = list(old.filter(deployment_id=deployment_id).select_for_update())
            merged = ms.rollup([_point(row) for row in rows], step)
            MetricPoint.objects.bulk_create(
                [_row(deployment_id, point, rolled_up=True) for point in merged]
            )
            MetricPoint.objects.filter(pk__in=[row.pk for row in rows]).delete()
            rolled += len(rows)
    deleted, _ = MetricPoint.objects.filter(
        rolled_up=True, ts__lt=now - st.ROLLUP_RETENTION_SECONDS
    ).delete()
    # Forget processes no scrape has seen for a day (restarted or scaled away).
    MetricScrape.objects.filter(scraped_at__lt=now - st.RAW_RETENTION_SECONDS).update(instances={})
    return rolled, deleted


def _point(row: MetricPoint) -> ms.Point:
    totals = ms.Totals(row.requests, row.errors, row.rows, dict(row.latency_buckets))
    return ms.Point(row.ts, row.seconds, totals)


def _row(deployment_id: int, point: ms.Point, rolled_up: bool) -> MetricPoint:
    return MetricPoint(
        deployment_id=deployment_id,
        ts=point.ts,
        seconds=point.seconds,
        rolled_up=rolled_up,
        requests=point.totals.requests,
        errors=point.totals.errors,
        rows=point.totals.rows,
        latency_buckets=sorted(point.totals.buckets.items(), key=lambda kv: _le(kv[0])),
    )


def deployment_metrics(deployment: Deployment, window: int, now: float | None = None) -> dict:
    """The metrics API's answer: {"step_s", "series": {name: [[ts, value], ...]}}."""
    now = now or time.time()
    if settings.PROMETHEUS_URL:
        from deployments.observability import prometheus

        return prometheus.deployment_metrics(deployment.name, window, now)
    step = ms.choose_step(window, scrape_interval_base())
    # Points whose interval reaches into the window (a point covers at most 10 intervals).
    since = now - window - 10 * scrape_interval()
    rows = MetricPoint.objects.filter(deployment=deployment, ts__gt=since).order_by("ts")
    points = [_point(row) for row in rows]
    return {"step_s": step, "series": ms.series(points, now, window, step)}


def scrape_interval_base() -> int:
    """The finest step the series take: 15 s, or the scrape interval when that is longer."""
    return max(15, scrape_interval())


# Sparklines are small: a point a minute is plenty, and keeps the dashboard's poll cheap.
SPARKLINE_STEP_SECONDS = 60


def sparklines(deployments: list[Deployment], window: int, now: float | None = None) -> dict:
    """Requests per second of several deployments (the dashboard), one query for all."""
    now = now or time.time()
    if settings.PROMETHEUS_URL:
        from deployments.observability import prometheus

        return prometheus.sparklines([d.name for d in deployments], window, now)
    step = ms.choose_step(window, SPARKLINE_STEP_SECONDS)
    since = now - window - 10 * scrape_interval()
    by_id: dict[int, list[ms.Point]] = {d.pk: [] for d in deployments}
    rows = MetricPoint.objects.filter(deployment__in=deployments, ts__gt=since).order_by("ts")
    for row in rows.only("deployment_id", "ts", "seconds", "requests", "errors", "rows"):
        point = ms.Point(row.ts, row.seconds, ms.Totals(row.requests, row.errors, row.rows))
        by_id[row.deployment_id].append(point)
    return {
        d.name: ms.series(by_id[d.pk], now, window, step)["requests_per_s"] for d in deployments
    }
