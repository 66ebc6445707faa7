"""Browser fixtures: one Debian Chromium for this package, driven by Playwright, against the live
console of tests/conftest.py. Screenshots go to test-artifacts/screenshots/ (see README)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    SCREENSHOTS,
    Visitor,
    log_in,
    watch,
)
from tests.support.requires import skip_missing


# Package scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break tests elsewhere that call asyncio.run().
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        # Debian's chromium: never `playwright install`.
        skip_missing("browser", f"{CHROMIUM} is missing", "sudo apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    for stale in SCREENSHOTS.glob("FAILED-*.png"):
        stale.unlink()

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def visit(request, browser, console) -> Iterator:
    """visit(persona, viewport=DESKTOP) -> a Visitor logged in through the login page."""
    contexts = []
    visitors: list[Visitor] = []

    def open_as(persona: str | None, viewport: dict = DESKTOP) -> Visitor:
        context = browser.new_context(viewport=viewport, base_url=console.url)
        context.set_default_timeout(60_000)
        contexts.append(context)
        page = context.new_page()
        visitor = Visitor(page, console.url)
        watch(page, visitor.problems)
        visitors.append(visitor)
        if persona:
            log_in(page, console.url, persona)
        return visitor

    yield open_as
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for i, visitor in enumerate(visitors):
            visitor.screenshot(f"FAILED-{request.node.name}-{i}")
        print("worker log (tail):\n" + console.log("worker")[-4000:])
    for context in contexts:
        context.close()
    problems = [p for v in visitors for p in v.problems]
    assert not problems, "the pages logged problems:\n" + "\n".join(problems)
