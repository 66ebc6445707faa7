"""The Logs panel of a deployment's page, in Chromium: it shows what the serving process wrote
and follows new lines without a reload."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.helpers import IRIS_ROW, register_iris, wait_for_status
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    console = ConsoleStack(Path(tmp_path_factory.mktemp("logs-panel-var")))
    try:
        yield console.start()
    finally:
        console.stop()


@pytest.fixture(scope="module")
def page(stack: ConsoleStack) -> Iterator:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium)", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(30_000)
            tab = context.new_page()
            problems: list[str] = []
            tab.on("pageerror", lambda error: problems.append(str(error)))
            tab.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            tab.goto(f"{stack.url}/accounts/login/")
            tab.get_by_label("Username").fill("viewer")
            tab.get_by_label("Password").fill("viewer-password-1")
            tab.get_by_role("button", name="Log in").click()
            tab.wait_for_url(f"{stack.url}/")
            yield tab
            assert problems == []
        finally:
            browser.close()


def test_the_logs_panel_shows_and_follows_the_serving_log(
    stack: ConsoleStack, page, tmp_path: Path
) -> None:
    register_iris(stack, tmp_path, "logged-iris", versions=1)
    client = stack.client("deployer")
    response = client.post("/api/deployments/", json={"name": "logged", "model": "logged-iris"})
    assert response.status_code == 202, response.text
    wait_for_status(client, "logged", "running")

    page.goto(f"{stack.url}/deployments/logged/")
    panel = page.locator("#logs")
    panel.get_by_role("heading", name="Logs").wait_for()
    page.wait_for_function(
        "() => document.querySelector('#log-lines').textContent.includes('model logged-iris ready')"
    )
    assert '"path":"/predict"' not in panel.inner_text()

    # A prediction made now shows up in the open page (htmx polls the panel).
    ok = client.post("/api/deployments/logged/predict/", json=[IRIS_ROW])
    assert ok.status_code == 200, ok.text
    page.wait_for_function(
        "() => document.querySelector('#log-lines').textContent.includes('\"path\":\"/predict\"')"
    )
