"""The console's cache is no pickle store under var/: the attack of a model that plants a pickle
in Django's file-based cache folder (read back by the web process on a wrong password, by the
worker through its watch keys) runs nothing, and the cache still counts login failures."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from django.core.cache.backends.filebased import FileBasedCache

pytestmark = pytest.mark.integration

PLANTED_KEYS = [
    "login-fail:127.0.0.1:cache-victim",
    "login-fail-ip:127.0.0.1",
    "deployment-watch:1",
    "deployment-watch:2",
]


class Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(folder: Path, marker: Path) -> None:
    """Entries exactly as Django's file-based cache writes them, for the keys the console reads."""
    planted = FileBasedCache(str(folder), {})
    for key in PLANTED_KEYS:
        planted.set(key, Payload(marker), timeout=3600)
    assert len(list(folder.glob("*.djcache"))) == len(PLANTED_KEYS)


READ_SCRIPT = """
import json
from django.conf import settings
from django.core.cache import cache
keys = {keys!r}
print("RESULT=" + json.dumps({{"backend": settings.CACHES["default"]["BACKEND"],
                              "values": [cache.get(k) for k in keys]}}))
"""

COUNT_SCRIPT = """
from django.core.cache import cache
print("RESULT=" + str(cache.get("login-fail:127.0.0.1:cache-victim") or 0))
"""


def test_planted_cache_pickles_are_never_loaded(console, tmp_path):
    marker = tmp_path / "unpickled"
    folder = console.var_dir / "cache"
    plant(folder, marker)
    try:
        check_nothing_loads(console, marker)
    finally:
        for path in folder.glob("*.djcache"):
            path.unlink()


def check_nothing_loads(console, marker: Path) -> None:
    # The web process: wrong passwords on the login page and the token endpoint.
    for _ in range(2):
        httpx.post(
            f"{console.url}/api/token/",
            json={"username": "cache-victim", "password": "wrong-password-1"},
            timeout=60,
        )
    # The console's own settings (as the worker reads its watch keys).
    seen = console.shell(READ_SCRIPT.format(keys=PLANTED_KEYS))
    assert seen["backend"] != "django.core.cache.backends.filebased.FileBasedCache"
    assert not marker.exists(), "the console unpickled a file a model could have written"
    # The failures were counted, in the real cache: the planted entries were not read.
    assert console.shell(COUNT_SCRIPT) == 2
    assert seen["values"][0] == 2


def test_the_cache_writes_nothing_under_var(console):
    before = {p for p in console.var_dir.rglob("*") if p.is_file()}
    for _ in range(2):
        httpx.post(
            f"{console.url}/api/token/",
            json={"username": "cache-writer", "password": "wrong-password-1"},
            timeout=60,
        )
    after = {p for p in console.var_dir.rglob("*") if p.is_file()}
    assert not [p for p in after - before if p.suffix == ".djcache"]
    assert not list(console.var_dir.rglob("*.djcache"))
