"""The console as a browser without JavaScript sees it: a logged-in session with cookies and
CSRF tokens, and the UI's paths by name."""

from __future__ import annotations

import re

import httpx

from tests.support.stack import ConsoleStack


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def session_client(stack: ConsoleStack, persona: str | None) -> httpx.Client:
    """A browser-like client (cookies, CSRF) logged in as `persona` through the login page."""
    client = httpx.Client(base_url=stack.url, timeout=60, follow_redirects=False)
    if persona is None:
        return client
    page = client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "username": persona,
            "password": f"{persona}-password-1",
            "csrfmiddlewaretoken": csrf_from(page.text),
        },
        headers={"Referer": f"{stack.url}/accounts/login/"},
    )
    assert response.status_code == 302, (persona, response.status_code, response.text[:500])
    return client


def ui_urls(stack: ConsoleStack, deployment: str, model: str) -> dict[str, str]:
    """The UI's paths by name, resolved by the console itself."""
    script = f"""
import json
from django.urls import reverse, NoReverseMatch
names = {{
    "dashboard": ("dashboard", {{}}),
    "models": ("model-list", {{}}),
    "model": ("model-detail", {{"name": "{model}"}}),
    "deploy-form": ("deployment-new", {{}}),
    "deployment": ("deployment-detail", {{"name": "{deployment}"}}),
    "undeploy": ("deployment-action", {{"name": "{deployment}", "action": "undeploy"}}),
    "rollback": ("deployment-action", {{"name": "{deployment}", "action": "rollback"}}),
}}
found = {{}}
for key, (name, kwargs) in names.items():
    try:
        found[key] = reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        pass
print("RESULT=" + json.dumps(found))
"""
    return stack.shell(script)
