"""The metrics API from Prometheus (PROMETHEUS_URL): PromQL over serving's metric names.

A deployment's series are selected with PROMETHEUS_SELECTOR, `job="{name}"` by default (what a
ServiceMonitor of the model-serving chart yields: the job is the Service, named after the
deployment); with the pod-annotation scrape config of Prometheus's own examples use, for
example, `app_kubernetes_io_instance="{name}"`.
"""

from __future__ import annotations

import math
import re

import httpx
from django.conf import settings

from deployments import constants as st
from deployments.observability.series import choose_step

# A selector naming the deployment in one label, e.g. job="{name}".
_SINGLE_LABEL = re.compile(r'^(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)="\{name\}"$')
# The finest step asked of Prometheus (its usual scrape interval).
BASE_STEP_SECONDS = 15


class PrometheusError(Exception):
    """Prometheus did not answer, or refused the query; the message says which."""


def _selector(name: str, extra: str = "") -> str:
    base = settings.PROMETHEUS_SELECTOR.replace("{name}", name.replace('"', ""))
    routes = f'route=~"{st.PREDICTION_ROUTE_PATTERN}"'
    return "{" + ",".join(part for part in (base, routes, extra) if part) + "}"


def queries(name: str, step: int) -> dict[str, str]:
    """PromQL per series name for deployment `name` at `step` seconds."""
    rng = f"[{max(60, 2 * step)}s]"
    sel = _selector(name)
    errors = _selector(name, 'status=~"5.."')
    rows_sel = "{" + settings.PROMETHEUS_SELECTOR.replace("{name}", name) + "}"
    buckets = f"sum by (le) (rate(serving_request_duration_seconds_bucket{sel}{rng}))"
    return {
        "requests_per_s": f"sum(rate(serving_requests_total{sel}{rng}))",
        "errors_per_s": f"sum(rate(serving_requests_total{errors}{rng})) or vector(0)",
        "latency_p50_ms": f"histogram_quantile(0.5, {buckets}) * 1000",
        "latency_p99_ms": f"histogram_quantile(0.99, {buckets}) * 1000",
        "rows_per_s": f"sum(rate(serving_rows_predicted_total{rows_sel}{rng}))",
    }


def _query_range(client: httpx.Client, query: str, start: float, end: float, step: int) -> list:
    """The points of a query's first series ([] when it has none)."""
    result = _query_range_all(client, query, start, end, step)
    return _points(result[0]["values"]) if result else []


def _query_range_all(
    client: httpx.Client, query: str, start: float, end: float, step: int
) -> list[dict]:
    try:
        response = client.get(
            f"{settings.PROMETHEUS_URL}/api/v1/query_range",
            params={"query": query, "start": start, "end": end, "step": step},
        )
    except httpx.HTTPError as exc:
        where = settings.PROMETHEUS_URL
        raise PrometheusError(f"Prometheus at {where} did not answer: {exc}") from None
    body = response.json() if response.content else {}
    if response.status_code != 200 or body.get("status") != "success":
        raise PrometheusError(f"Prometheus refused the query: {body.get('error', response.text)}")
    return body["data"]["result"]


def _points(values: list) -> list[list[float]]:
    points = []
    for ts, value in values:
        number = float(value)
        if math.isfinite(number):
            points.append([float(ts), round(number, 6)])
    return points


def deployment_metrics(name: str, window: int, now: float, only: tuple[str, ...] = ()) -> dict:
    step = choose_step(window, BASE_STEP_SECONDS)
    end = now
    start = math.floor((now - window) / step) * step
    out = {}
    with httpx.Client(timeout=10) as client:
        for series_name, query in queries(name, step).items():
            if only and series_name not in only:
                continue
            out[series_name] = _query_range(client, query, start, end, step)
    return {"step_s": step, "series": out}


def sparklines(names: list[str], window: int, now: float) -> dict[str, list]:
    """Requests/s of several deployments: one query grouped by the selector's label when the
    selector is a single `label="{name}"`, else one query per deployment."""
    step = choose_step(window, 60)
    # Steps counted back from now, so that the last point is now (the latest traffic shows).
    start = now - math.floor(window / step) * step
    rng = f"[{max(120, 2 * step)}s]"
    out: dict[str, list] = {name: [] for name in names}
    single = _SINGLE_LABEL.match(settings.PROMETHEUS_SELECTOR.strip())
    with httpx.Client(timeout=10) as client:
        if single is None:
            for name in names:
                query = f"sum(rate(serving_requests_total{_selector(name)}{rng}))"
                out[name] = _query_range(client, query, start, now, step)
            return out
        label = single["label"]
        wanted = "|".join(re.escape(name) for name in names)
        sel = "{" + f'{label}=~"{wanted}",route=~"{st.PREDICTION_ROUTE_PATTERN}"' + "}"
        query = f"sum by ({label}) (rate(serving_requests_total{sel}{rng}))"
        for series in _query_range_all(client, query, start, now, step):
            name = series["metric"].get(label, "")
            if name in out:
                out[name] = _points(series["values"])
    return out
