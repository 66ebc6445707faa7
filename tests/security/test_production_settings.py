"""Production settings (CONSOLE_HTTPS=true): Django's deployment checklist is clean, a missing
or weak SECRET_KEY stops start-up with a clear message, and the responses carry the security
headers and secure cookies. The embedded defaults keep working with no configuration at all
(every live-console test runs on them)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "CELERY"))}
    base.pop("SECRET_KEY", None)
    base.pop("DEBUG", None)
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "CONSOLE_VAR_DIR": str(tmp_path / "var"),
            "ALLOWED_HOSTS": "console.example.com",
        }
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def strong_key() -> str:
    return secrets.token_urlsafe(64)


def test_check_deploy_is_clean_in_production(tmp_path, strong_key):
    result = _manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        "--tag",
        "security",
        CONSOLE_HTTPS="true",
        SECRET_KEY=strong_key,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_embedded_defaults_are_not_production(tmp_path):
    """Without CONSOLE_HTTPS the checklist does complain: the switch is what makes it clean."""
    result = _manage(tmp_path, "check", "--deploy", "--tag", "security", "--fail-level", "WARNING")
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "a" * 64}, "SECRET_KEY is too weak"),
        ({"DEBUG": "true"}, "DEBUG must be false"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"CONSOLE_HTTPS": "sure"}, "CONSOLE_HTTPS='sure' is not a boolean"),
    ],
)
def test_bad_production_settings_stop_start_up(tmp_path, env, message):
    result = _manage(tmp_path, "check", **{"CONSOLE_HTTPS": "true", **env})
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]


def test_secret_key_from_a_mounted_file(tmp_path, strong_key):
    secret = tmp_path / "secret"
    secret.write_text(strong_key + "\n")
    result = _manage(tmp_path, "check", CONSOLE_HTTPS="true", SECRET_KEY_FILE=str(secret))
    assert result.returncode == 0, result.stderr


RESPONSE_SCRIPT = """
import json
from django.contrib.auth.models import User
from django.test import Client
from django.conf import settings
plain = Client().get("/accounts/login/", HTTP_HOST="console.example.com")
client = Client()
secure = client.get("/accounts/login/", HTTP_HOST="console.example.com", secure=True,
                    HTTP_X_FORWARDED_PROTO="https")
cookie = secure.cookies.get("csrftoken")
print("RESULT=" + json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location", ""),
    "status": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security", ""),
    "frame": secure.get("X-Frame-Options", ""),
    "nosniff": secure.get("X-Content-Type-Options", ""),
    "referrer": secure.get("Referrer-Policy", ""),
    "csrf_secure": bool(cookie and cookie["secure"]),
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "session_httponly": settings.SESSION_COOKIE_HTTPONLY,
}))
"""


def test_production_responses_are_https_only(tmp_path, strong_key):
    migrate = _manage(tmp_path, "migrate", "-v0", CONSOLE_HTTPS="true", SECRET_KEY=strong_key)
    assert migrate.returncode == 0, migrate.stderr
    result = _manage(
        tmp_path, "shell", "-c", RESPONSE_SCRIPT, CONSOLE_HTTPS="true", SECRET_KEY=strong_key
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.split("RESULT=", 1)[1].splitlines()[0])
    assert seen["plain_status"] == 301
    assert seen["plain_location"].startswith("https://console.example.com/")
    assert seen["status"] == 200
    assert "max-age=31536000" in seen["hsts"]
    assert "includeSubDomains" in seen["hsts"]
    assert seen["frame"] == "DENY"
    assert seen["nosniff"] == "nosniff"
    assert seen["referrer"] == "same-origin"
    assert seen["csrf_secure"] is True
    assert seen["session_secure"] is True
    assert seen["session_httponly"] is True
