"""Observing a live deployment through the console's API: the scraped metrics count the
requests sent, the prediction log holds them, and drift flags the one shifted feature."""

from __future__ import annotations

import time

import pytest

from tests.support.observed import COLUMNS, SHIFTED, Observed
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration


def _counted(series: list[list[float]], step: int, now: float) -> float:
    """Requests in a requests/s series: the last, unfinished step is a rate over its elapsed
    part (until `now`, when the console answered)."""
    return sum(value * min(step, now - ts) for ts, value in series)


def test_metrics_count_the_requests_sent(console: ConsoleStack, observed: Observed) -> None:
    client = console.client("viewer")
    deadline = time.monotonic() + 90
    counted = 0.0
    while time.monotonic() < deadline:
        before = time.time()
        body = client.get("/api/deployments/observed/metrics/?window=15m").json()
        now = (before + time.time()) / 2
        counted = _counted(body["series"]["requests_per_s"], body["step_s"], now)
        # Counted once a scrape (every 3 s here) has seen the traffic.
        if counted >= observed.requests * 0.95:
            break
        time.sleep(1)
    assert body["step_s"] == 15
    assert observed.requests * 0.95 <= counted <= observed.requests * 1.05, body
    assert set(body["series"]) == {
        "requests_per_s", "errors_per_s", "latency_p50_ms", "latency_p99_ms", "rows_per_s"
    }  # fmt: skip
    assert all(value == 0 for _, value in body["series"]["errors_per_s"])
    p50 = [v for _, v in body["series"]["latency_p50_ms"]]
    p99 = [v for _, v in body["series"]["latency_p99_ms"]]
    assert p50 and all(0 < a <= b for a, b in zip(p50, p99, strict=True))
    bad = client.get("/api/deployments/observed/metrics/?window=2 hours")
    assert bad.status_code == 400 and "use one of" in bad.json()["window"]


def test_the_prediction_log_holds_what_was_sent(console: ConsoleStack, observed: Observed) -> None:
    client = console.client("viewer")
    deadline = time.monotonic() + 30
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = client.get("/api/deployments/observed/predictions/?limit=1000").json()["records"]
        if len(records) >= observed.requests:
            break
        time.sleep(0.5)
    assert len(records) >= observed.requests
    logged = [tuple(row) for record in records for row in record["inputs"]]
    assert sorted(logged) == sorted(tuple(row) for row in observed.sent)
    assert {record["version"] for record in records} == {"1"}
    assert all(len(record["outputs"]) == len(record["inputs"]) for record in records)
    assert client.get("/api/deployments/observed/predictions/?limit=0").status_code == 400


def test_drift_flags_the_shifted_feature_only(console: ConsoleStack, observed: Observed) -> None:
    client = console.client("viewer")
    deadline = time.monotonic() + 30
    while True:
        body = client.get("/api/deployments/observed/drift/?window=1h").json()
        if body["rows"] >= len(observed.sent) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert body["rows"] == len(observed.sent)
    assert [f["name"] for f in body["features"]] == COLUMNS
    drifted = [f["name"] for f in body["features"] if f["drifted"]]
    assert drifted == [COLUMNS[SHIFTED]], body
    shifted = body["features"][SHIFTED]
    assert shifted["psi"] > 1 and shifted["p_value"] < 1e-6
