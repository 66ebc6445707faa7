"""Metrics arithmetic (parsing, increments, quantiles, spreading into steps, rollup and
retention) and drift statistics (PSI, KS, chi-squared), in this process."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from deployments import constants as st
from deployments.models import MetricPoint
from deployments.observability import drift, window_seconds
from deployments.observability import metrics as om
from deployments.observability import series as ms


def _page(requests: int, errors: int = 0, slow: int = 0, rows: int = 0, health: int = 0) -> str:
    """A /metrics page with serving's metric names, from a real prometheus_client registry."""
    r = CollectorRegistry()
    count = Counter("serving_requests", "", ["route", "method", "status"], registry=r)
    latency = Histogram(
        "serving_request_duration_seconds",
        "",
        ["route", "method", "status"],
        buckets=(0.001, 0.01, 0.1, 1),
        registry=r,
    )
    Counter("serving_rows_predicted", "", registry=r).inc(rows)
    Gauge("serving_instance_id", "", registry=r).set(42)
    for _ in range(requests - errors):
        count.labels("/predict", "POST", "200").inc()
        latency.labels("/predict", "POST", "200").observe(0.005)
    for _ in range(errors):
        count.labels("/v2/models/{name}/infer", "POST", "500").inc()
        latency.labels("/v2/models/{name}/infer", "POST", "500").observe(0.5)
    for _ in range(slow):
        count.labels("/predict", "POST", "200").inc()
        latency.labels("/predict", "POST", "200").observe(0.5)
    for _ in range(health):
        count.labels("/v2/health/ready", "GET", "200").inc()
    return generate_latest(r).decode()


def test_parsing_counts_prediction_routes_only_and_5xx_as_errors() -> None:
    instance, totals = ms.parse_metrics(_page(10, errors=3, rows=12, health=50))
    assert instance == "42"
    assert (totals.requests, totals.errors, totals.rows) == (10, 3, 12)
    assert totals.buckets["+Inf"] == 10
    assert totals.buckets["0.01"] == 7


def test_increments_between_scrapes_and_after_a_restart() -> None:
    before = ms.Totals(100, 2, 300, {"0.01": 90, "+Inf": 100})
    now = ms.Totals(130, 2, 360, {"0.01": 115, "+Inf": 130})
    step = ms.increment(before, now)
    assert (step.requests, step.errors, step.rows) == (30, 0, 60)
    assert step.buckets == {"0.01": 25, "+Inf": 30}
    restarted = ms.Totals(5, 0, 5, {"0.01": 5, "+Inf": 5})
    assert ms.increment(before, restarted).requests == 5  # counters went back: all is new


def test_quantiles_interpolate_inside_the_bucket_as_prometheus_does() -> None:
    buckets = {"0.1": 50.0, "0.2": 100.0, "+Inf": 100.0}
    assert ms.quantile(0.5, buckets) == pytest.approx(0.1)
    assert ms.quantile(0.75, buckets) == pytest.approx(0.15)
    assert ms.quantile(0.25, buckets) == pytest.approx(0.05)
    assert ms.quantile(0.99, {"0.1": 0.0, "+Inf": 10.0}) == 0.1  # open top bucket
    assert ms.quantile(0.5, {"+Inf": 0.0}) is None


def test_spreading_keeps_counts_exact_whatever_the_scrape_interval() -> None:
    # Scrapes every 7 s into 15 s steps: each point is shared in proportion to its overlap.
    points = [ms.Point(1000 + 7 * i, 7, ms.Totals(7, 0, 7)) for i in range(1, 10)]
    steps = ms.spread(points, 990, 1100, 15)
    assert sum(t.requests for t in steps.values()) == pytest.approx(63)
    assert steps[1005].requests == pytest.approx(15)  # a whole step at 1 request/s


def test_series_rates_and_latency_per_step() -> None:
    totals = ms.Totals(30, 3, 60, {"0.01": 27, "1": 30, "+Inf": 30})
    points = [ms.Point(1020, 15, totals), ms.Point(1035, 15, totals)]
    out = ms.series(points, now=1035, window=900, step=15)
    assert set(out) == set(st.METRIC_SERIES)
    assert out["requests_per_s"] == [[1005, 2.0], [1020, 2.0]]
    assert out["errors_per_s"][0] == [1005, 0.2]
    assert out["rows_per_s"][0] == [1005, 4.0]
    # The current step, 5 s old, is a rate over those 5 s.
    half = ms.series([ms.Point(1040, 5, ms.Totals(10, 0, 10))], now=1040, window=900, step=15)
    assert half["requests_per_s"] == [[1035, 2.0]]
    assert out["latency_p50_ms"][0][1] == pytest.approx(0.01 * 1000 * 15 / 27, rel=1e-3)
    assert out["latency_p99_ms"][0][1] > 100


def test_long_windows_get_coarser_steps() -> None:
    assert ms.choose_step(900, 15) == 15
    assert ms.choose_step(24 * 3600, 15) == 240
    assert 7 * 24 * 3600 / ms.choose_step(7 * 24 * 3600, 15) <= st.MAX_SERIES_POINTS


def test_windows_are_named() -> None:
    assert window_seconds(None, "15m") == 900
    with pytest.raises(ValueError, match="use one of 5m, 15m"):
        window_seconds("15 minutes", "15m")


@pytest.mark.django_db
def test_retention_rolls_old_points_into_minutes_and_deletes_the_oldest(
    make_deployment,
) -> None:
    deployment = make_deployment(name="pruned")
    now = 10_000_000.0
    old = now - st.RAW_RETENTION_SECONDS - 3600  # an hour past the raw retention
    for i in range(8):  # two minutes of 15 s points, 15 requests each
        MetricPoint.objects.create(
            deployment=deployment, ts=old + 15 * (i + 1), seconds=15, requests=15,
            latency_buckets=[["0.01", 15], ["+Inf", 15]],
        )  # fmt: skip
    MetricPoint.objects.create(deployment=deployment, ts=now - 30, seconds=15, requests=1)
    MetricPoint.objects.create(
        deployment=deployment, ts=now - st.ROLLUP_RETENTION_SECONDS - 60, seconds=60,
        requests=9, rolled_up=True,
    )  # fmt: skip
    rolled, deleted = om.prune(now)
    assert (rolled, deleted) == (8, 1)
    rollups = MetricPoint.objects.filter(deployment=deployment, rolled_up=True)
    assert sum(p.requests for p in rollups) == pytest.approx(120)
    assert all(p.seconds == st.ROLLUP_STEP_SECONDS for p in rollups)
    assert sum(dict(p.latency_buckets)["+Inf"] for p in rollups) == pytest.approx(120)
    assert MetricPoint.objects.filter(deployment=deployment, rolled_up=False).count() == 1


def test_prediction_log_days_past_their_retention_are_deleted(settings, tmp_path) -> None:
    from deployments.observability.prediction_log import prune

    settings.PREDICTION_LOG_DIR = tmp_path
    settings.PREDICTION_LOG_RETENTION_DAYS = 30
    now = 1_767_225_600.0  # 2026-01-01 00:00 UTC
    for path in (
        "fraud/2025-11-30/1.jsonl",  # 32 days before: deleted
        "fraud/2025-12-01/1.jsonl",  # its last second is 30 days before: deleted
        "fraud/2025-12-02/1.jsonl",  # kept
        "fraud/notes/keep.txt",  # not a day folder: kept
        "removed-model/2025-10-01/1.jsonl",  # a removed deployment's old log: deleted
        "removed-model/2025-12-31/1.jsonl",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}\n")
    assert prune(now) == ["fraud/2025-11-30", "fraud/2025-12-01", "removed-model/2025-10-01"]
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl"))
    assert left == ["fraud/2025-12-02/1.jsonl", "removed-model/2025-12-31/1.jsonl"]
    assert (tmp_path / "fraud/notes/keep.txt").exists()
    settings.PREDICTION_LOG_RETENTION_DAYS = 0  # keep everything
    assert prune(now + 400 * 86400) == []
    assert len(list(tmp_path.rglob("*.jsonl"))) == 2


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    same, p_same = drift.numeric_drift(reference, rng.normal(0, 1, 2000))
    shifted, p_shifted = drift.numeric_drift(reference, rng.normal(3, 1, 2000))
    assert same < 0.05 and p_same > 0.01
    assert shifted > 2 and p_shifted < 1e-10


def test_category_drift_uses_frequencies_and_chi_squared() -> None:
    reference = ["a"] * 500 + ["b"] * 500
    same, p_same = drift.categorical_drift(reference, ["a"] * 250 + ["b"] * 250)
    moved, p_moved = drift.categorical_drift(reference, ["a"] * 450 + ["b"] * 50)
    assert same == pytest.approx(0) and p_same > 0.5
    assert moved > 0.2 and p_moved < 1e-10


def test_compare_flags_only_the_shifted_feature_with_per_feature_thresholds() -> None:
    rng = np.random.default_rng(1)
    reference = [[str(a), str(b), c] for a, b, c in zip(
        rng.normal(0, 1, 2000), rng.normal(5, 2, 2000), rng.choice(["x", "y"], 2000),
        strict=True)]  # fmt: skip
    logged = [[float(a), float(b), c] for a, b, c in zip(
        rng.normal(0, 1, 500), rng.normal(5 + 3 * 2, 2, 500), rng.choice(["x", "y"], 500),
        strict=True)]  # fmt: skip
    features = drift.compare(["a", "b", "c"], reference, logged)
    assert [f["name"] for f in features if f["drifted"]] == ["b"]
    assert {f["name"]: f["kind"] for f in features} == {
        "a": "number",
        "b": "number",
        "c": "category",
    }
    by_name = drift.compare(
        ["a", "b", "c"], reference, [dict(zip("abc", row, strict=True)) for row in logged],
        thresholds={"b": 100.0},
    )  # fmt: skip
    assert [f["name"] for f in by_name if f["drifted"]] == []


def test_a_reference_file_that_is_no_csv_is_refused_in_plain_words() -> None:
    with pytest.raises(drift.DriftUnavailable, match="not UTF-8"):
        drift.read_csv(b"\xff\xfe\x00bad")
    with pytest.raises(drift.DriftUnavailable, match="header row"):
        drift.read_csv(b"")
    assert drift.read_csv(b"a,b\n1,2\n") == (["a", "b"], [["1", "2"]])


@pytest.mark.django_db
def test_a_reference_csv_is_stored_and_a_bad_one_refused_in_plain_words(make_version) -> None:
    from deployments.observability.reference import store_reference

    version = make_version("referenced", input_size=2)
    with pytest.raises(ValueError, match="has 3 columns; the model takes 2 features"):
        store_reference(version, b"a,b,c\n1,2,3\n", None)
    with pytest.raises(ValueError, match="header but no rows"):
        store_reference(version, b"a,b\n", None)
    with pytest.raises(ValueError, match="thresholds must map feature names"):
        store_reference(version, b"a,b\n1,2\n", '{"a": "high"}')
    with pytest.raises(ValueError, match="columns the file lacks: z"):
        store_reference(version, b"a,b\n1,2\n", '{"z": 0.3}')
    store_reference(version, b"a,b\n1,2\n3,4\n", '{"b": 0.3}')
    version.refresh_from_db()
    assert version.drift_thresholds == {"b": 0.3}
    assert drift.reference_rows(version) == (["a", "b"], [["1", "2"], ["3", "4"]])


@pytest.mark.django_db
def test_the_metrics_api_and_the_sparklines_read_the_stored_points(make_deployment) -> None:
    import time

    from django.contrib.auth.models import User
    from django.test import Client
    from rest_framework.test import APIClient

    deployment = make_deployment(name="charted", endpoint="http://127.0.0.1:1")
    now = time.time()
    for i in range(1, 5):  # a minute at 2 requests/s, the last point just now
        MetricPoint.objects.create(
            deployment=deployment, ts=now - 45 + 15 * (i - 1), seconds=15, requests=30, rows=60,
            latency_buckets=[["0.005", 30], ["+Inf", 30]],
        )  # fmt: skip
    user = User.objects.create(username="looker")
    api = APIClient()
    api.force_authenticate(user)
    body = api.get("/api/deployments/charted/metrics/?window=5m").json()
    assert body["step_s"] == 15
    counted = sum(v * min(15, now - t) for t, v in body["series"]["requests_per_s"])
    assert counted == pytest.approx(120, rel=0.02)
    assert all(0 < v <= 5 for _, v in body["series"]["latency_p99_ms"])
    assert api.get("/api/deployments/charted/metrics/?window=1y").status_code == 400

    web = Client()
    web.force_login(user)
    lines = web.get("/fragments/sparklines/").json()["deployments"]
    assert [d["name"] for d in lines] == ["charted"]
    assert sum(v for _, v in lines[0]["requests_per_s"]) > 0
    assert lines[0]["drifted"] == []
