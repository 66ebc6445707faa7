"""Who may do what, over real HTTP: every API endpoint and the UI's pages and actions for
anonymous, viewer, deployer and admin; tokens managed by their owner; login rate limiting.

Allowed writes are sent with a body or a target that stops them after the permission check
(a 400, 404 or 409 that names the problem), so the table shows the permission decision without
starting serving processes; the golden path and the race tests show the same actions working.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import wait_for_status
from tests.support.ui import csrf_from, session_client, ui_urls

pytestmark = pytest.mark.integration

PERSONAS = ("anonymous", "viewer", "deployer", "admin")
DEP = "perm-stopped"
GHOST = "perm-ghost"
MODEL = "hard-iris"

# method, path, JSON body, expected status for anonymous, viewer, deployer, admin
API_TABLE = [
    ("GET", "/api/models/", None, (401, 200, 200, 200)),
    ("POST", "/api/models/", {"name": "perm-model", "job": "bogus"}, (401, 403, 400, 400)),
    ("GET", f"/api/models/{MODEL}/", None, (401, 200, 200, 200)),
    ("DELETE", f"/api/models/{MODEL}/", None, (401, 403, 409, 409)),  # it has versions
    ("POST", f"/api/models/{MODEL}/unarchive/", None, (401, 403, 200, 200)),
    ("GET", f"/api/models/{MODEL}/versions/", None, (401, 200, 200, 200)),
    ("POST", f"/api/models/{MODEL}/versions/", {}, (401, 403, 400, 400)),
    ("GET", f"/api/models/{MODEL}/versions/1/", None, (401, 200, 200, 200)),
    ("GET", "/api/deployments/", None, (401, 200, 200, 200)),
    ("POST", "/api/deployments/", {"name": "perm-x", "model": "nope"}, (401, 403, 400, 400)),
    ("GET", f"/api/deployments/{DEP}/", None, (401, 200, 200, 200)),
    ("PATCH", f"/api/deployments/{GHOST}/", {"replicas": 1}, (401, 403, 404, 404)),
    ("PUT", f"/api/deployments/{DEP}/", {"replicas": 1}, (401, 403, 405, 405)),
    ("DELETE", f"/api/deployments/{GHOST}/", None, (401, 403, 404, 404)),
    ("POST", f"/api/deployments/{GHOST}/archive/", None, (401, 403, 404, 404)),
    ("GET", f"/api/deployments/{DEP}/helm-values/", None, (401, 200, 200, 200)),
    ("POST", f"/api/deployments/{DEP}/undeploy/", None, (401, 403, 202, 202)),
    ("POST", f"/api/deployments/{GHOST}/deploy/", None, (401, 403, 404, 404)),
    ("POST", f"/api/deployments/{DEP}/rollback/", None, (401, 403, 409, 409)),
    ("POST", f"/api/deployments/{DEP}/predict/", [[1, 2, 3, 4]], (401, 409, 409, 409)),
    ("GET", f"/api/deployments/{DEP}/events/", None, (401, 200, 200, 200)),
    ("POST", f"/api/deployments/{DEP}/events/", {"message": "x"}, (401, 403, 405, 405)),
    ("DELETE", f"/api/deployments/{DEP}/events/", None, (401, 403, 405, 405)),
    ("GET", f"/api/deployments/{DEP}/metrics/", None, (401, 200, 200, 200)),
    ("GET", f"/api/deployments/{DEP}/predictions/", None, (401, 200, 200, 200)),
    ("GET", f"/api/deployments/{DEP}/drift/", None, (401, 200, 200, 200)),
    # (JSON, not the CSV it takes: refused after the role check, nothing stored.)
    ("PUT", f"/api/models/{MODEL}/versions/1/reference/", {}, (401, 403, 415, 415)),
    ("GET", "/api/schema/", None, (401, 200, 200, 200)),
    ("GET", "/api/docs/", None, (401, 200, 200, 200)),
    ("GET", "/api/redoc/", None, (401, 200, 200, 200)),
    ("GET", "/api/tokens/", None, (401, 200, 200, 200)),  # each sees only their own
    ("POST", "/api/tokens/", {"name": ""}, (401, 400, 400, 400)),
    ("DELETE", "/api/tokens/999999/", None, (401, 404, 404, 404)),
    ("DELETE", "/api/token/", None, (401, None, None, None)),  # owners: see the token tests
]


@pytest.fixture(scope="module")
def stopped_deployment(console, iris_model) -> str:
    admin = console.client("admin")
    response = admin.post("/api/deployments/", json={"name": DEP, "model": MODEL, "version": 1})
    assert response.status_code == 202, response.text
    wait_for_status(admin, DEP, {"running", "failed"})
    admin.post(f"/api/deployments/{DEP}/undeploy/")
    wait_for_status(admin, DEP, {"stopped"})
    return DEP


def _api_client(console, persona: str) -> httpx.Client:
    if persona == "anonymous":
        return httpx.Client(base_url=console.url, timeout=60)
    return console.client(persona)


@pytest.mark.parametrize(("method", "path", "body", "expected"), API_TABLE)
def test_api_permission_table(console, stopped_deployment, method, path, body, expected):
    seen = {}
    for persona, wanted in zip(PERSONAS, expected, strict=True):
        if wanted is None:
            continue
        with _api_client(console, persona) as client:
            response = client.request(method, path, json=body)
        seen[persona] = response.status_code
        if response.status_code == 401:
            assert response.headers.get("www-authenticate", "").startswith("Token")
        if response.status_code == 403:
            assert "deployer role" in response.text or "permission" in response.text.lower()
    assert seen == {p: w for p, w in zip(PERSONAS, expected, strict=True) if w is not None}
    # Nothing the table sent changed the deployment or registered a model.
    with console.client("admin") as admin:
        assert admin.get(f"/api/deployments/{DEP}/").json()["status"] == "stopped"
        assert admin.get("/api/models/perm-model/").status_code == 404
        assert admin.get("/api/deployments/perm-x/").status_code == 404


def test_ui_permission_table(console, stopped_deployment):
    urls = ui_urls(console, DEP, MODEL)
    assert {"dashboard", "models", "deploy-form", "deployment", "undeploy"} <= set(urls), urls
    # page or action, method, expected for anonymous, viewer, deployer, admin (302 = redirect:
    # to the login page for anonymous, back to the deployment after an action)
    table = [
        ("dashboard", "GET", (302, 200, 200, 200)),
        ("models", "GET", (302, 200, 200, 200)),
        ("model", "GET", (302, 200, 200, 200)),
        ("deploy-form", "GET", (302, 403, 200, 200)),
        ("deployment", "GET", (302, 200, 200, 200)),
        ("undeploy", "POST", (302, 403, 302, 302)),
        ("rollback", "POST", (302, 403, 302, 302)),
    ]
    admin_table = [
        ("/admin/", (302, 302, 302, 200)),
        ("/admin/auth/user/", (302, 302, 302, 200)),
        ("/admin/deployments/deployment/", (302, 302, 302, 200)),
    ]
    results: dict[tuple[str, str], int] = {}
    expected: dict[tuple[str, str], int] = {}
    for index, persona in enumerate(PERSONAS):
        client = session_client(console, None if persona == "anonymous" else persona)
        landing = client.get("/accounts/login/" if persona == "anonymous" else urls["dashboard"])
        token = client.cookies.get("csrftoken") or csrf_from(landing.text)
        for key, method, wanted in table:
            if key not in urls:
                continue
            response = client.request(
                method,
                urls[key],
                headers={"X-CSRFToken": token, "Referer": console.url + urls["dashboard"]},
            )
            results[(persona, key)] = response.status_code
            expected[(persona, key)] = wanted[index]
            if persona == "anonymous" and response.status_code == 302:
                assert "/accounts/login/" in response.headers["location"]
        for path, wanted in admin_table:
            results[(persona, path)] = client.get(path).status_code
            expected[(persona, path)] = wanted[index]
    assert results == expected
    with console.client("admin") as admin:
        body = admin.get(f"/api/deployments/{DEP}/").json()
        assert body["status"] == "stopped"
        assert body["version"] == 1


def _create_user(console, username: str, password: str) -> None:
    console.shell(
        f"""
import json
from django.contrib.auth.models import Group, User
user = User.objects.filter(username="{username}").first() or User.objects.create_user(
    username="{username}", password="{password}")
user.groups.add(Group.objects.get(name="viewer"))
print("RESULT=" + json.dumps(user.pk))
"""
    )


def test_tokens_are_created_and_revoked_by_their_owner(console):
    _create_user(console, "tok-owner", "owner-password-1")
    _create_user(console, "tok-other", "other-password-1")
    anon = httpx.Client(base_url=console.url, timeout=60)

    assert anon.post("/api/token/", json={}).status_code == 401
    assert anon.delete("/api/token/").status_code == 401
    wrong = anon.post("/api/token/", json={"username": "tok-owner", "password": "nope-nope"})
    assert wrong.status_code == 401
    assert "wrong username or password" in wrong.json()["detail"].lower()

    created = anon.post(
        "/api/token/", json={"username": "tok-owner", "password": "owner-password-1"}
    )
    assert created.status_code == 201, created.text
    first = created.json()["token"]
    assert created.json()["user"] == "tok-owner"
    owner = httpx.Client(
        base_url=console.url, timeout=60, headers={"Authorization": f"Token {first}"}
    )
    assert owner.get("/api/deployments/").status_code == 200

    # A new token replaces the old one.
    rotated = owner.post("/api/token/")
    assert rotated.status_code == 201
    second = rotated.json()["token"]
    assert second != first
    assert owner.get("/api/deployments/").status_code == 401
    owner.headers["Authorization"] = f"Token {second}"
    assert owner.get("/api/deployments/").status_code == 200

    # Someone else revoking revokes only their own token.
    other_token = anon.post(
        "/api/token/", json={"username": "tok-other", "password": "other-password-1"}
    ).json()["token"]
    other = httpx.Client(
        base_url=console.url, timeout=60, headers={"Authorization": f"Token {other_token}"}
    )
    assert other.delete("/api/token/").status_code == 204
    assert other.get("/api/deployments/").status_code == 401
    assert owner.get("/api/deployments/").status_code == 200

    assert owner.delete("/api/token/").status_code == 204
    assert owner.get("/api/deployments/").status_code == 401


def test_login_attempts_are_rate_limited(console):
    _create_user(console, "rate-victim", "victim-password-1")
    client = httpx.Client(base_url=console.url, timeout=60)

    def attempt(password: str) -> httpx.Response:
        page = client.get("/accounts/login/")
        return client.post(
            "/accounts/login/",
            data={
                "username": "rate-victim",
                "password": password,
                "csrfmiddlewaretoken": csrf_from(page.text),
            },
            headers={"Referer": f"{console.url}/accounts/login/"},
        )

    for _ in range(5):
        response = attempt("guess-wrong")
        assert response.status_code == 200
        assert "correct username and password" in response.text
    blocked = attempt("victim-password-1")  # even the right password, for a while
    assert blocked.status_code == 429
    assert "Too many failed login attempts" in blocked.text
    assert "sessionid" not in client.cookies

    token = client.post(
        "/api/token/", json={"username": "rate-victim", "password": "victim-password-1"}
    )
    assert token.status_code == 429
    assert "too many failed login attempts" in token.json()["detail"].lower()

    # Other users from the same address are not locked out by one account's failures.
    assert session_client(console, "viewer").get("/").status_code == 200
