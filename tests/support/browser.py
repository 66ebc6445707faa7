"""A browser for tests: Debian's Chromium driven by Playwright, and a logged-in persona's tab
that records script errors and CSP violations. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Debian's chromium; CHROMIUM names another binary for a local run.
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


def _aborted(text: str) -> bool:
    """htmx logs a request cut short by a navigation (or a newer name check) as an error.

    It logs `htmx:afterRequest` before each failure's own event, so a network error or a timeout
    is still caught by `htmx:sendError` or `htmx:timeout`.
    """
    return text.startswith(("htmx:sendAbort", "htmx:afterRequest"))


def watch(page, problems: list[str]) -> None:
    def on_console(message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            problems.append(f"CSP on {page.url}: {text[:90]} at {message.location}")
        elif message.type == "error" and "status of 4" not in text and not _aborted(text):
            problems.append(f"console error: {text}")

    def on_request(request) -> None:
        # A script that built a URL from a missing attribute (`"..." + undefined`).
        if "undefined" in request.url.split("?")[0]:
            problems.append(f"request built from a missing value: {request.url}")

    page.on("console", on_console)
    page.on("request", on_request)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))


def log_in(page, console_url: str, persona: str) -> None:
    page.goto(f"{console_url}/accounts/login/")
    page.get_by_label("Username").fill(persona)
    page.get_by_label("Password").fill(f"{persona}-password-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{console_url}/")
