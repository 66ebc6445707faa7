"""Automatic canary analysis, and each version's live metrics for the traffic panel.

A periodic task (`tasks.traffic_tick`) calls `tick(deployment)` for every serving deployment
with a canary or a shadow. Each tick reads every version's counters (`canary_metrics`) and keeps
the rates on the record (`traffic_state["metrics"]`). With `canary.analysis` set it then works
as Flagger's and Argo Rollouts' canary analysis does: the weight starts at the first step; every
`interval_s` the canary's error rate and p99 over the interval are compared with the limits;
while they hold the weight moves to the next step, and after the last one the canary is
promoted; as soon as one fails (on at least MIN_ANALYSIS_REQUESTS requests) the weight goes back
to 0 by itself and an event says which limit failed, by how much, on how many requests.

`canary_metrics` is the one place that reads a version's numbers, so another source (a shared
metrics store) can replace it without touching the analysis.
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

import httpx

from deployments import constants as st
from deployments.models import Deployment

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_SECONDS = 2.0
# Requests to these routes are not the model's traffic.
_NOT_TRAFFIC = re.compile(r"^/(metrics|v2/health|v2/models/[^/]+/ready|v1/models/[^/:]+$|v2$)")
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_counters(text: str) -> dict[str, Any]:
    """From serving's /metrics: prediction requests, server errors among them, and the latency
    histogram's cumulative buckets (seconds -> count), all routes of the model added up."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels_text, value = match.groups()
        labels = dict(_LABEL.findall(labels_text))
        if _NOT_TRAFFIC.match(labels.get("route", "")):
            continue
        if name == "serving_requests_total":
            requests += float(value)
            if int(labels.get("status", "0") or 0) >= st.ERROR_STATUS_FIRST:
                errors += float(value)
        elif name == "serving_request_duration_seconds_bucket":
            bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return {"requests": requests, "errors": errors, "buckets": buckets}


def quantile_ms(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' histogram_quantile over cumulative buckets, in milliseconds (0 if empty)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return 0.0
    rank = q * buckets[bounds[-1]]
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound * 1000  # beyond the last finite bucket: its bound
            share = (
                (rank - previous_count) / (count - previous_count) if count > previous_count else 1
            )
            return (previous_bound + (bound - previous_bound) * share) * 1000
        previous_bound, previous_count = bound, count
    return previous_bound * 1000


def _delta(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Counters since `before`; a restarted process (counters went down) counts from zero."""
    if not before or now["requests"] < before.get("requests", 0):
        return now
    old_buckets = {float(k): v for k, v in before.get("buckets", {}).items()}
    return {
        "requests": now["requests"] - before["requests"],
        "errors": now["errors"] - before.get("errors", 0),
        "buckets": {b: c - old_buckets.get(b, 0.0) for b, c in now["buckets"].items()},
    }


def _scrape(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse_counters(response.text)


def canary_metrics(
    deployment: Deployment, version: int, endpoints: dict[int, str] | None = None
) -> tuple[float, float, int] | None:
    """(error rate 0..1, p99 in ms, requests) of `version` of `deployment` since the previous
    call, read from that version's own serving processes; None when they cannot be read.

    The counters read are kept in `deployment.traffic_state["counters"]` (the caller saves
    the record), so the next call measures from there.
    """
    if endpoints is None:
        from deployments.runtimes import get_runtime
        from deployments.specs import serving_spec

        endpoints = get_runtime().version_endpoints(serving_spec(deployment))
    url = endpoints.get(version)
    if url is None:
        return None
    now = _scrape(url)
    if now is None:
        return None
    counters = deployment.traffic_state.setdefault("counters", {})
    delta = _delta(now, counters.get(str(version)))
    counters[str(version)] = {
        "requests": now["requests"],
        "errors": now["errors"],
        "buckets": {str(k): v for k, v in now["buckets"].items()},
    }
    requests = int(delta["requests"])
    error_rate = delta["errors"] / delta["requests"] if delta["requests"] > 0 else 0.0
    return error_rate, quantile_ms(0.99, delta["buckets"]), requests


def tick(deployment: Deployment, now: float | None = None) -> None:
    """Measure every version in traffic, then take one step of the canary analysis."""
    from deployments.runtimes import get_runtime
    from deployments.specs import serving_spec

    now = time.time() if now is None else now
    state = deployment.traffic_state = dict(deployment.traffic_state or {})
    runtime, spec = get_runtime(), serving_spec(deployment)
    endpoints = runtime.version_endpoints(spec)
    last_at = float(state.get("at") or 0)
    seconds = now - last_at if last_at else 0.0
    metrics: dict[str, Any] = {}
    canary_seen = None
    for row in deployment.traffic():
        seen = canary_metrics(deployment, row["version"], endpoints)
        if seen is None:
            continue
        error_rate, p99_ms, requests = seen
        if row["role"] == st.CANARY:
            canary_seen = seen
        if not seconds:
            continue  # the first reading is the baseline
        metrics[str(row["version"])] = {
            "role": row["role"],
            "requests_per_s": round(requests / seconds, 2),
            "error_rate": round(error_rate, 4),
            "p99_ms": round(p99_ms, 2),
        }
        if row["role"] == st.SHADOW:
            metrics[str(row["version"])]["copies_dropped"] = runtime.shadow_dropped(spec)
    state["at"] = now
    if seconds:
        state["metrics"] = metrics
    actions = []
    if deployment.canary_analysis and canary_seen is not None and seconds:
        actions = _analyse(deployment, state, canary_seen, now)
    elif deployment.canary_analysis and "analysis" not in state:
        state["analysis"] = {"step": -1, "since": now, "requests": 0, "errors": 0.0, "p99_ms": 0.0}
    guard = {
        "canary_version_id": deployment.canary_version_id,
        "canary_weight": deployment.canary_weight,
        "model_version_id": deployment.model_version_id,
    }
    if not Deployment.objects.filter(pk=deployment.pk, **guard).update(traffic_state=state):
        return  # the traffic changed meanwhile: this reading belongs to the old one
    for action in actions:
        action()


def _analyse(
    deployment: Deployment, state: dict[str, Any], seen: tuple[float, float, int], now: float
) -> list:
    """Fold one reading of the canary into the analysis; the changes to make, if any."""
    from deployments.traffic.changes import analysis_verdict, promote

    config = deployment.canary_analysis or {}
    analysis = state.setdefault(
        "analysis", {"step": -1, "since": now, "requests": 0, "errors": 0.0, "p99_ms": 0.0}
    )
    if analysis.get("done"):
        return []
    steps = list(config.get("steps") or st.DEFAULT_ANALYSIS_STEPS)
    if analysis["step"] < 0:
        # Start: the first step's weight; the interval is measured from there.
        analysis.update(step=0, since=now, requests=0, errors=0.0, p99_ms=0.0)
        weight = steps[0]
        message = f"canary analysis: v{deployment.canary_version.version} to {weight}%"  # type: ignore[union-attr]
        return [lambda: analysis_verdict(deployment, weight, message)]
    error_rate, p99_ms, requests = seen
    analysis["requests"] += requests
    analysis["errors"] += error_rate * requests
    if requests:
        analysis["p99_ms"] = max(analysis["p99_ms"], p99_ms)
    total = analysis["requests"]
    rate = analysis["errors"] / total if total else 0.0
    version = deployment.canary_version.version  # type: ignore[union-attr]
    failed = ""
    if total >= st.MIN_ANALYSIS_REQUESTS:
        if rate > float(config["max_error_rate"]):
            failed = (
                f"error rate {rate:.2%} is over the {float(config['max_error_rate']):.2%} "
                f"allowed (max_error_rate)"
            )
        elif analysis["p99_ms"] > float(config["max_p99_ms"]):
            failed = (
                f"p99 latency {analysis['p99_ms']:.1f} ms is over the "
                f"{float(config['max_p99_ms']):g} ms allowed (max_p99_ms)"
            )
    if failed:
        analysis["done"] = "rolled back"
        analysis["reason"] = failed
        message = (
            f"canary analysis rolled v{version} back to 0%: {failed}, on {total} requests at "
            f"{deployment.canary_weight}%"
        )
        return [lambda: analysis_verdict(deployment, 0, message, failed=True)]
    if now - float(analysis["since"]) < float(config["interval_s"]):
        return []
    if total < st.MIN_ANALYSIS_REQUESTS:
        return []  # too few requests to judge: the step goes on
    summary = f"error rate {rate:.2%}, p99 {analysis['p99_ms']:.1f} ms on {total} requests"
    step = int(analysis["step"]) + 1
    analysis.update(since=now, requests=0, errors=0.0, p99_ms=0.0)
    if step >= len(steps):
        analysis["done"] = "promoted"
        return [
            lambda: promote(deployment, actor=None, reason=f"canary analysis passed ({summary})")
        ]
    analysis["step"] = step
    weight = steps[step]
    message = f"canary analysis: v{version} to {weight}% ({summary} held)"
    return [lambda: analysis_verdict(deployment, weight, message)]
