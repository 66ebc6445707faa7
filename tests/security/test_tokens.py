"""API tokens are stored hashed: the database holds no token that would log in, the token
endpoint and `manage.py drf_create_token` hand a token out once, `Authorization: Token ...`
works with it, and tokens of an older console (REST framework's, in clear) keep working after
the migration, with their clear copy gone."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.stack import ROOT, ConsoleStack, create_database

pytestmark = pytest.mark.integration

SCAN_SCRIPT = """
import json
from django.db import connection
needles = json.loads({needles!r})
found = {{}}
with connection.cursor() as cursor:
    for table in connection.introspection.table_names():
        cursor.execute("SELECT * FROM " + connection.ops.quote_name(table))
        text = repr(cursor.fetchall())
        for needle in needles:
            if needle in text:
                found.setdefault(needle, []).append(table)
print("RESULT=" + json.dumps({{"found": found, "tables": connection.introspection.table_names()}}))
"""

USER_SCRIPT = """
from django.contrib.auth.models import User
if not User.objects.filter(username="{name}").exists():
    User.objects.create_user(username="{name}", password="{name}-password-1")
print("RESULT=1")
"""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def scan(stack: ConsoleStack, needles: list[str]) -> dict:
    """Which tables hold each string anywhere in a row (every table, every column)."""
    return stack.shell(SCAN_SCRIPT.format(needles=json.dumps(needles)))


def status_with(stack: ConsoleStack, token: str) -> int:
    headers = {"Authorization": f"Token {token}"}
    return httpx.get(f"{stack.url}/api/models/", headers=headers, timeout=60).status_code


def test_database_holds_no_token_in_clear(console):
    keys = list(console.tokens.values())
    result = scan(console, keys + [digest(k) for k in keys])
    assert "authtoken_token" not in result["tables"]
    for key in keys:
        assert key not in result["found"], f"a token in clear in {result['found'][key]}"
        # The scan does read the token table: the hash is there.
        assert result["found"].get(digest(key)) == ["deployments_apitoken"]


def test_token_logs_in_and_a_wrong_one_is_401(console):
    assert status_with(console, console.tokens["viewer"]) == 200
    wrong = console.tokens["viewer"][:-4] + "0000"
    for token in (wrong, digest(console.tokens["viewer"]), "x" * 40):
        response = httpx.get(
            f"{console.url}/api/models/", headers={"Authorization": f"Token {token}"}, timeout=60
        )
        assert response.status_code == 401, token
        assert response.json()["detail"] == "Invalid token."
        assert response.headers["www-authenticate"].startswith("Token")


def test_token_endpoint_hands_out_a_hashed_token_once(console):
    console.shell(USER_SCRIPT.format(name="token-owner"))
    credentials = {"username": "token-owner", "password": "token-owner-password-1"}
    first = httpx.post(f"{console.url}/api/token/", json=credentials, timeout=60)
    assert first.status_code == 201, first.text
    key = first.json()["token"]
    assert status_with(console, key) == 200
    assert key not in scan(console, [key])["found"]

    # A new token replaces the old one; DELETE revokes the one in use.
    second = httpx.post(f"{console.url}/api/token/", json=credentials, timeout=60)
    new_key = second.json()["token"]
    assert new_key != key
    assert status_with(console, key) == 401
    revoked = httpx.delete(
        f"{console.url}/api/token/", headers={"Authorization": f"Token {new_key}"}, timeout=60
    )
    assert revoked.status_code == 204
    assert status_with(console, new_key) == 401


def test_drf_create_token_command_prints_a_working_token(console):
    console.shell(USER_SCRIPT.format(name="script-user"))
    out = console.manage("drf_create_token", "script-user")
    words = out.split()
    assert words[:2] == ["Generated", "token"] and words[3:] == ["for", "user", "script-user"]
    key = words[2]  # the README's `awk '{print $3}'`
    assert status_with(console, key) == 200
    again = console.manage("drf_create_token", "-r", "script-user").split()[2]
    assert status_with(console, again) == 200
    assert status_with(console, key) == 401
    assert key not in scan(console, [key, again])["found"]
    assert again not in scan(console, [key, again])["found"]


def manage_as(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


OLD_TOKEN_SCRIPT = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
user = User.objects.create_user(username="old-client", password="old-client-password-1")
print("RESULT=" + Token.objects.create(user=user).key)
"""


def test_clear_tokens_of_an_older_console_keep_working_hashed(tmp_path: Path):
    stack = ConsoleStack(tmp_path / "var")
    try:
        stack.var_dir.mkdir(parents=True)
        if stack.database:
            create_database(stack.database)
        # The database as the console left it before: REST framework's tokens, in clear.
        old = {**stack.env, "DJANGO_SETTINGS_MODULE": "tests.security.authtoken_settings"}
        manage_as(old, "migrate", "--noinput", "-v0", "auth")
        manage_as(old, "migrate", "--noinput", "-v0", "deployments", "0004")
        manage_as(old, "migrate", "--noinput", "-v0", "authtoken")
        key = manage_as(old, "shell", "-c", OLD_TOKEN_SCRIPT).split("RESULT=", 1)[1].strip()
        assert len(key) == 40

        stack.manage("migrate", "--noinput", "-v0")
        result = scan(stack, [key, digest(key)])
        assert "authtoken_token" not in result["tables"]
        assert key not in result["found"]
        assert result["found"][digest(key)] == ["deployments_apitoken"]

        stack.start_web()
        assert status_with(stack, key) == 200
        assert status_with(stack, key[:-1] + ("0" if key[-1] != "0" else "1")) == 401
    finally:
        stack.stop()
