"""The console's everyday housekeeping in Chromium: the API docs load with no outside request,
an API token is made, used and revoked from the UI, the dashboard searches and pages through
3,000 deployments, and a stopped deployment is deleted so its name can be used again."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.browser import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SEED = """
import json
from deployments.models import Deployment, ModelVersion
version = ModelVersion.objects.get(model__name="hard-iris", version=1)
Deployment.objects.bulk_create(
    [Deployment(name=name, model_version=version, status="stopped") for name in {names!r}],
    batch_size=1000,
)
print("RESULT=" + json.dumps(Deployment.objects.filter(name__in={names!r}).count()))
"""
UNSEED = """
import json
from deployments.models import Deployment
print("RESULT=" + json.dumps(Deployment.objects.filter(name__startswith={prefix!r}).delete()[0]))
"""


def _outside(urls: list[str]) -> list[str]:
    """Requests that went anywhere but the console on 127.0.0.1 (data: and blob: stay here)."""
    return [
        u
        for u in urls
        if urlsplit(u).scheme not in {"data", "blob"} and urlsplit(u).hostname != "127.0.0.1"
    ]


def _picture(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def test_api_docs_render_their_operations_offline(visit):
    me = visit("viewer")
    page = me.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    response = me.goto("/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/deployments/" in paths and "/api/tokens/" in paths, paths
    _picture(page, "30-api-docs-swagger")

    me.goto("/api/redoc/")
    page.get_by_text("/api/deployments/{name}/predict/").first.wait_for(state="attached")
    assert page.locator("[data-section-id^='operation/']").count() > 10
    _picture(page, "31-api-docs-redoc")

    assert requested and not _outside(requested), _outside(requested)
    # (The visit fixture fails the test on any CSP violation or script error on these pages.)


def test_a_token_is_created_used_and_revoked_from_the_ui(visit, console):
    me = visit("deployer")
    page = me.page
    me.goto("/tokens/")
    page.get_by_label("Name").fill("nightly-report")
    page.get_by_label("Expires").select_option("30")
    page.get_by_role("button", name="Create token").click()
    page.locator("#token-key").wait_for()
    key = page.locator("#token-key").inner_text().strip()
    assert page.locator('tr[data-token="nightly-report"]').count() == 1
    me.screenshot("32-token-created")

    api = httpx.Client(base_url=console.url, timeout=60, headers={"Authorization": f"Token {key}"})
    assert api.get("/api/deployments/").status_code == 200

    # A reload never shows the key again.
    me.goto("/tokens/")
    assert key not in page.content() and key[:8] in page.content()
    page.get_by_role("button", name="Revoke nightly-report").click()
    page.locator("#confirm-dialog[open]").wait_for()
    me.screenshot("33-token-confirm-revoke", full_page=False)
    page.locator("#confirm-ok").click()
    page.get_by_text("Token nightly-report revoked").wait_for()
    assert page.locator('tr[data-token="nightly-report"]').count() == 0
    refused = api.get("/api/deployments/")
    assert refused.status_code == 401 and refused.json()["detail"] == "Invalid token."


def test_the_dashboard_searches_and_pages_through_3000_deployments(visit, console, iris_model):
    names = [f"fleet-{i:04d}" for i in range(3000)]
    assert console.shell(SEED.format(names=names)) == 3000
    try:
        me = visit("viewer")
        page = me.page
        me.goto("/")
        page.get_by_label("Search").fill("fleet-")
        page.get_by_label("Status").select_option("stopped")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url("**/?name=fleet-*")
        assert page.locator("#shown-range").first.inner_text() == "1–50 of 3000"
        rows = page.locator("tr[data-deployment]")
        assert rows.count() == 50 and rows.first.get_attribute("data-deployment") == "fleet-0000"

        page.locator("#page-next").first.click()
        page.wait_for_url("**page=2*")
        assert rows.first.get_attribute("data-deployment") == "fleet-0050"
        # The live refresh (every 2 s) re-renders this page, not the first one.
        page.evaluate("window.notReloaded = true")
        with page.expect_response(lambda r: "/fragments/deployments/" in r.url) as polled:
            pass
        assert "page=2" in polled.value.url and "name=fleet-" in polled.value.url
        page.wait_for_timeout(300)
        assert rows.first.get_attribute("data-deployment") == "fleet-0050"
        assert page.evaluate("window.notReloaded") is True
        me.screenshot("34-dashboard-page-2-of-60")

        page.get_by_label("Sort").select_option("-name")
        page.get_by_label("Search").fill("fleet-29")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url("**sort=-name*")
        assert page.locator("#shown-range").first.inner_text() == "1–50 of 100"
        assert rows.first.get_attribute("data-deployment") == "fleet-2999"
        page.get_by_label("Search").fill("no-such-fleet")
        page.get_by_role("button", name="Show").click()
        page.locator("#no-match").wait_for()
        me.screenshot("35-dashboard-no-match")
    finally:
        console.shell(UNSEED.format(prefix="fleet-"))


def test_a_stopped_deployment_is_deleted_and_its_name_used_again(visit, console, iris_model):
    assert console.shell(SEED.format(names=["reuse-me"])) == 1
    me = visit("deployer")
    page = me.page
    me.goto("/deployments/reuse-me/")
    # Its snippets offer a token in place of YOUR_TOKEN.
    page.locator("#snippets summary").click()
    page.get_by_role("button", name="Create a token").click()
    page.locator("#token-inline-key").wait_for()
    assert len(page.locator("#token-inline-key").inner_text().strip()) == 40

    page.get_by_role("button", name="Delete…").click()
    page.locator("#confirm-dialog[open]").wait_for()
    assert "the name reuse-me becomes free" in page.locator("#confirm-message").inner_text()
    me.screenshot("36-confirm-delete", full_page=False)
    page.locator("#confirm-ok").click()
    page.get_by_text("Deployment reuse-me deleted; the name reuse-me is free again.").wait_for()
    assert page.locator('tr[data-deployment="reuse-me"]').count() == 0

    me.goto("/deploy/")
    page.get_by_label("Deployment name").press_sequentially("reuse-me", delay=10)
    page.locator('#name-check[data-valid="true"]').wait_for()
    choice = page.locator("select[name=version] option", has_text="hard-iris v1").first
    page.get_by_label("Model version").select_option(choice.get_attribute("value"))
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_url("**/deployments/reuse-me/")
    me.screenshot("37-name-used-again")
    client = console.client("deployer")
    assert client.get("/api/deployments/reuse-me/").json()["version"] == 1
    assert client.post("/api/deployments/reuse-me/undeploy/").status_code == 202
