"""Tests that need something installed outside the venv (a system package, or a tool `make test`
fetches): skipped with the command that installs it, or failed in CI, where all must be there.

The skip reason follows one pattern so that tests/conftest.py can sum them up in one line at the
end of the run.
"""

from __future__ import annotations

import os
import re
from typing import NoReturn

import pytest

_REASON = re.compile(r"^missing for the (?P<group>.+?) tests: (?P<what>.+?) — (?P<install>.+)$")


def skip_missing(group: str, what: str, install: str) -> NoReturn:
    """Skip the `group` tests (fail them with CI=true): `what` is missing, `install` installs it."""
    message = f"missing for the {group} tests: {what} — {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def parse_missing(reason: str) -> tuple[str, str, str] | None:
    """(group, what, install) from a skip reason written by skip_missing, else None."""
    match = _REASON.match(reason.removeprefix("Skipped: "))
    return (match["group"], match["what"], match["install"]) if match else None


def missing_summary(reasons: list[str]) -> str | None:
    """One line naming the tests skipped for something missing and how to install each."""
    counts: dict[tuple[str, str, str], int] = {}
    for reason in reasons:
        found = parse_missing(reason)
        if found:
            counts[found] = counts.get(found, 0) + 1
    if not counts:
        return None
    parts = [
        f"{n} {group} tests: {what} — {install}" for (group, what, install), n in counts.items()
    ]
    return "Skipped " + "; ".join(parts)
