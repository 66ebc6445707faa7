"""The observability panels in Chromium: the metrics charts draw the scraped points and take
new ones without a reload, the drift bars flag the shifted feature, the prediction log shows
the requests, and the dashboard's Traffic panel draws a sparkline with the drift flag."""

from __future__ import annotations

import pytest

from tests.support.observed import COLUMNS, SHIFTED, Observed

pytestmark = pytest.mark.integration

CHART = "#metrics figure[data-series='{}']"


def test_charts_render_points_and_update(visit, observed: Observed) -> None:
    me = visit("viewer")
    page = me.page
    me.goto("/deployments/observed/")
    for series in ("requests_per_s", "errors_per_s", "latency_p50_ms", "latency_p99_ms"):
        page.wait_for_function(
            f'() => Number(document.querySelector("{CHART.format(series)}").dataset.points) > 0',
            timeout=60_000,
        )
        assert page.locator(f"{CHART.format(series)} canvas").count() == 1
    first = page.locator(CHART.format("requests_per_s"))
    before = (first.get_attribute("data-last"), first.locator(".last").inner_text())

    # New traffic shows up in the open page: a new point, or the current one grows.
    observed.send(30, seed=2)
    page.wait_for_function(
        """([last, text]) => {
            const f = document.querySelector("#metrics figure[data-series='requests_per_s']");
            return f.dataset.last !== last || f.querySelector('.last').textContent !== text;
        }""",
        arg=list(before),
        timeout=60_000,
    )

    flagged = page.locator("#drift-table tr[data-drifted='true']")
    flagged.first.wait_for(timeout=30_000)
    assert flagged.count() == 1
    assert flagged.first.get_attribute("data-feature") == COLUMNS[SHIFTED]
    assert page.locator("#drift-chart").get_attribute("data-bars") == str(len(COLUMNS))
    page.locator("#prediction-rows tbody tr").first.wait_for(timeout=30_000)
    me.screenshot("observability-deployment")

    me.goto("/")
    row = page.locator("#traffic-table tr[data-deployment='observed']")
    row.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => Number(document.querySelector(\"#traffic-table tr[data-deployment='observed'] "
        'td.sparkline").dataset.points) > 0'
    )
    assert row.locator("canvas").count() == 1
    assert COLUMNS[SHIFTED] in row.locator("td.drift").inner_text()
    me.screenshot("observability-dashboard")
