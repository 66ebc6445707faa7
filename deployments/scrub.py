"""Remove the console's secrets from text that came from model code before anyone reads it.

Model processes are isolated and never get these secrets, so this is a last line of defence:
any runtime text that reaches a record users can read (a deployment's status_reason, an event,
an upload's refusal) goes through `scrub()` first.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from django.conf import settings

REDACTED = "[redacted]"
# DRF's API token keys, and a PEM private key (a service-account file, say).
_TOKEN = re.compile(r"\b[0-9a-f]{40}\b")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
)
_MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words
# What looks like a secret whatever its value: user:password@ in URLs; NAME=value,
# "name": "value" and name: value for names that hold secrets; Bearer/Token/Basic credentials.
_SECRET_PATTERNS = [
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    (
        re.compile(
            r"(?i)\b([\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|"
            r"private[_-]?key|credential)[\w.-]*[\"']?\s*[=:]\s*)([\"']?)[^\s\"',}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[a-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
]


def _url_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def console_secrets() -> list[str]:
    """The values that must never appear in what users read, longest first."""
    values = [
        settings.SECRET_KEY,
        os.environ.get("CONSOLE_ADMIN_PASSWORD", ""),
        str(settings.DATABASES["default"].get("PASSWORD") or ""),
        _url_password(os.environ.get("DATABASE_URL", "")),
        _url_password(getattr(settings, "CELERY_BROKER_URL", "")),
        _url_password(getattr(settings, "CACHE_URL", "")),
    ]
    values += [
        value
        for name, value in os.environ.items()
        if name.endswith(("_PASSWORD", "_SECRET", "_TOKEN", "_KEY")) and name != "GCS_PROJECT"
    ]
    return sorted({v for v in values if len(v) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact_secret_patterns(text: str) -> str:
    """`text` with what looks like a password, token or key replaced; needs no settings, so
    the local runtime's supervisor uses it on a dead process's last line."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(text: str) -> str:
    """`text` with every console secret, API token, private key and whatever looks like a
    secret replaced by [redacted]."""
    if not text:
        return text
    for secret in console_secrets():
        text = text.replace(secret, REDACTED)
    text = _PRIVATE_KEY.sub(REDACTED, text)
    return redact_secret_patterns(_TOKEN.sub(REDACTED, text))
