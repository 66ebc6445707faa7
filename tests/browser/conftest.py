"""Browser fixtures: one Debian Chromium for this package, driven by Playwright, against the live
console of tests/conftest.py. Screenshots go to test-artifacts/screenshots/ (see README)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Debian's chromium (DESIGN.md section 4); CHROMIUM names another binary for a local run.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
    .map(e => e.name || e.id)"""
PHONE = {"width": 390, "height": 844}


# Package scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break tests elsewhere that call asyncio.run().
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        message = (
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(apt-get install -y chromium); never `playwright install`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    for stale in SCREENSHOTS.glob("FAILED-*.png"):
        stale.unlink()

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Visitor:
    """A logged-in persona's browser tab that records script errors and CSP violations."""

    page: object
    console_url: str
    problems: list[str] = field(default_factory=list)

    def goto(self, path: str):
        response = self.page.goto(self.console_url + path)
        assert response is not None and response.status < 400, (path, response and response.status)
        return response

    def screenshot(self, name: str, full_page: bool = True) -> None:
        """Save a picture of the page, after checking that every form control has a label."""
        unlabelled = self.page.evaluate(UNLABELLED)
        assert not unlabelled, f"inputs without a label on {self.page.url}: {unlabelled}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def csrf_token(self) -> str:
        cookies = self.page.context.cookies(self.console_url)
        return next(c["value"] for c in cookies if c["name"] == "csrftoken")


def _watch(page, problems: list[str]) -> None:
    def on_console(message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            problems.append(f"CSP on {page.url}: {text[:90]} at {message.location}")
        elif message.type == "error" and "status of 4" not in text:
            problems.append(f"console error: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))


def log_in(page, console_url: str, persona: str) -> None:
    page.goto(f"{console_url}/accounts/login/")
    page.get_by_label("Username").fill(persona)
    page.get_by_label("Password").fill(f"{persona}-password-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{console_url}/")


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
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        visitor = Visitor(page, console.url)
        _watch(page, visitor.problems)
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
