"""Pure metric arithmetic: serving's /metrics text -> totals, totals -> increments, increments
-> the rate and latency series the charts draw. No database, no network: unit-tested alone.

A scrape point holds what was counted over an interval (end `ts`, length `seconds`). A series
step spreads each point over the steps its interval overlaps, in proportion, so that counts
add up exactly whatever the scrape interval and however the steps are cut.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from deployments import constants as st

_PREDICTION_ROUTE = re.compile(st.PREDICTION_ROUTE_PATTERN)


@dataclass
class Totals:
    """What one serving process has counted since it started (prediction routes only)."""

    requests: float = 0.0
    errors: float = 0.0
    rows: float = 0.0
    buckets: dict[str, float] = field(default_factory=dict)  # le -> cumulative count

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rows": self.rows,
            "buckets": self.buckets,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Totals:
        return cls(data["requests"], data["errors"], data["rows"], dict(data["buckets"]))


def parse_metrics(text: str) -> tuple[str, Totals]:
    """(the serving process's instance id, its totals) from its /metrics page."""
    totals = Totals()
    instance = ""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "serving_instance_id":
                instance = str(int(value))
            elif name == "serving_rows_predicted_total":
                totals.rows += value
            elif not _PREDICTION_ROUTE.match(labels.get("route", "")):
                continue
            elif name == "serving_requests_total":
                totals.requests += value
                if int(labels.get("status", "0") or 0) >= st.ERROR_STATUS_FIRST:
                    totals.errors += value
            elif name == "serving_request_duration_seconds_bucket":
                le = labels["le"]
                totals.buckets[le] = totals.buckets.get(le, 0.0) + value
    return instance, totals


def increment(before: Totals | None, now: Totals) -> Totals:
    """What was counted between two scrapes of one process; all of `now` when the process
    is new or restarted (its counters went back)."""
    if before is None or now.requests < before.requests or now.rows < before.rows:
        return Totals(now.requests, now.errors, now.rows, dict(now.buckets))
    return Totals(
        now.requests - before.requests,
        max(0.0, now.errors - before.errors),
        now.rows - before.rows,
        {le: max(0.0, count - before.buckets.get(le, 0.0)) for le, count in now.buckets.items()},
    )


def add(into: Totals, other: Totals, fraction: float = 1.0) -> None:
    into.requests += other.requests * fraction
    into.errors += other.errors * fraction
    into.rows += other.rows * fraction
    for le, count in other.buckets.items():
        into.buckets[le] = into.buckets.get(le, 0.0) + count * fraction


def quantile(q: float, buckets: dict[str, float]) -> float | None:
    """The q-quantile (seconds) of a cumulative histogram, interpolated linearly inside its
    bucket as Prometheus's histogram_quantile() does; None without observations."""
    bounds = sorted(((math.inf if le == "+Inf" else float(le)), c) for le, c in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    total = bounds[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if math.isinf(upper):
                return lower  # in the open top bucket: the highest finite bound
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


@dataclass
class Point:
    """Increments over the interval (ts - seconds, ts]."""

    ts: float
    seconds: float
    totals: Totals


def spread(points: list[Point], start: float, end: float, step: int) -> dict[float, Totals]:
    """Steps [t, t + step) from `start` to `end` (start aligned by the caller) -> the share of
    each point's increments that falls in them, in proportion to the overlap. Steps no point
    covers are absent."""
    steps: dict[float, Totals] = {}
    for point in points:
        begin = point.ts - point.seconds
        if point.seconds <= 0:
            continue
        first = max(start, start + math.floor((begin - start) / step) * step)
        t = first
        while t < min(point.ts, end):
            overlap = min(point.ts, t + step) - max(begin, t)
            if overlap > 0:
                add(steps.setdefault(t, Totals()), point.totals, overlap / point.seconds)
            t += step
    return steps


def choose_step(window: int, base: int) -> int:
    """The series step for a window: the scrape resolution, coarser for long windows so an
    answer holds at most MAX_SERIES_POINTS points per series."""
    step = max(base, math.ceil(window / st.MAX_SERIES_POINTS))
    return int(math.ceil(step / base) * base)


def series(points: list[Point], now: float, window: int, step: int) -> dict[str, list[list[float]]]:
    """The charts' series over the `window` seconds before `now`: rates per second over each
    step (the current, unfinished step over its elapsed part) and latency quantiles in ms
    (absent for steps without requests)."""
    start = math.floor((now - window) / step) * step
    steps = spread(points, start, now, step)
    out: dict[str, list[list[float]]] = {name: [] for name in st.METRIC_SERIES}
    for t in sorted(steps):
        totals = steps[t]
        length = min(step, now - t) if t + step > now else step
        if length <= 0:
            continue
        out["requests_per_s"].append([t, round(totals.requests / length, 6)])
        out["errors_per_s"].append([t, round(totals.errors / length, 6)])
        out["rows_per_s"].append([t, round(totals.rows / length, 6)])
        for name, q in (("latency_p50_ms", 0.5), ("latency_p99_ms", 0.99)):
            value = quantile(q, totals.buckets)
            if value is not None:
                out[name].append([t, round(value * 1000, 3)])
    return out


def rollup(points: list[Point], step: int) -> list[Point]:
    """`points` merged into whole steps of `step` seconds (the coarser retention tier)."""
    if not points:
        return []
    start = math.floor(min(p.ts - p.seconds for p in points) / step) * step
    end = max(p.ts for p in points)
    merged = spread(points, start, end, step)
    return [Point(t + step, step, totals) for t, totals in sorted(merged.items())]
