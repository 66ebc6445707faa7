"""Shared fixtures: a live console (web + real Celery worker + local runtime) per session, and a
gcp-storage-emulator server for everything that talks to GCS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gcs import GcsEmulator
from tests.support.stack import ConsoleStack


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    stack = ConsoleStack(Path(tmp_path_factory.mktemp("console-var")))
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """A real gcp-storage-emulator server on a free loopback port."""
    emulator = GcsEmulator(tmp_path_factory.mktemp("gcs") / "emulator.log")
    try:
        yield emulator.start()
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def gcs_emulator(gcs: GcsEmulator) -> str:
    """The emulator's base URL: point the real client at it with STORAGE_EMULATOR_HOST=<url>."""
    return gcs.url
