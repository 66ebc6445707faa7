"""The traffic panel in Chromium: a deployer starts a canary with the weight slider, watches
the split and each version's live numbers, and promotes it."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from tests.support.api import Registered
from tests.support.net import wait_until

pytestmark = pytest.mark.integration

NAME = "iris-traffic-ui"
ROW = [5.1, 3.5, 1.4, 0.2]
TIMEOUT = 150_000


def _running(client: httpx.Client) -> dict:
    deadline = threading.Event()
    for _ in range(600):
        body = client.get(f"/api/deployments/{NAME}/").json()
        if body["status"] in {"running", "failed"}:
            assert body["status"] == "running", body
            return body
        deadline.wait(0.25)
    raise AssertionError(f"{NAME} did not start")


def test_set_a_canary_watch_the_split_and_promote(visit, console, iris_model: Registered) -> None:
    client = console.client("deployer")
    v1, v2 = iris_model.versions[:2]
    response = client.post(
        "/api/deployments/", json={"name": NAME, "model": iris_model.model, "version": v1}
    )
    assert response.status_code == 202, response.text
    endpoint = _running(client)["endpoint"]

    me = visit("deployer")
    page = me.page
    me.goto(f"/deployments/{NAME}/")
    page.locator("#traffic-primary[data-weight='100']").wait_for()
    page.get_by_label("Canary").select_option(label=f"v{v2}")
    page.locator("#canary-weight").evaluate(
        "e => { e.value = 30; e.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert page.locator("#canary-weight-value").inner_text() == "30"
    page.locator("#canary-button").click()
    page.wait_for_url(f"**/deployments/{NAME}/")
    page.locator(f"#traffic-canary[data-version='{v2}'][data-weight='30']").wait_for()
    assert page.locator("#traffic-primary").get_attribute("data-weight") == "70"

    # Requests through the endpoint: the canary answers its share, and the panel shows each
    # version's requests per second side by side, without reloading.
    stop = threading.Event()
    seen: Counter = Counter()

    def send() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    answer = http.post(f"{endpoint}/predict", json=[ROW])
                except httpx.TransportError:
                    # A keep-alive connection the old serving process closed as the stable
                    # port moved to the proxy (on a busy machine, while this loop runs): the
                    # next request opens another. The live traffic tests count failures.
                    continue
                seen[int(answer.headers["model-version"])] += 1

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        page.evaluate("window.notReloaded = true")
        for role in ("primary", "canary"):
            page.locator(f"#traffic-{role} td.rps:not(:has(.muted))").wait_for(timeout=TIMEOUT)
        assert page.evaluate("window.notReloaded") is True
        assert "%" in page.locator("#traffic-canary td.errors").inner_text()
        assert "ms" in page.locator("#traffic-canary td.p99").inner_text()
        me.screenshot("traffic-01-canary-at-30")
        # The proxy gives the canary its weight once it answers (on a busy machine its process
        # may still be starting while the panel already shows both rows).
        wait_until(lambda: seen[v2] > 0, TIMEOUT / 1000, "the canary's first answer")

        # Promote asks first, then the canary is the primary for every request.
        page.locator("#promote-button").click()
        page.locator("#confirm-dialog").wait_for()
        page.locator("#confirm-ok").click()
        page.wait_for_url(f"**/deployments/{NAME}/")
        page.locator(f"#traffic-primary[data-version='{v2}'][data-weight='100']").wait_for(
            timeout=TIMEOUT
        )
        assert page.locator("#traffic-canary").count() == 0
        page.locator('#status[data-status="running"]').wait_for(timeout=TIMEOUT)
    finally:
        stop.set()
        sender.join(timeout=30)
    events = page.locator("#events").inner_text()
    assert "promote" in events and "by deployer" in events
    me.screenshot("traffic-02-promoted")
    client.post(f"/api/deployments/{NAME}/undeploy/")
