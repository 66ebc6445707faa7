"""Shared fixtures: a live console (web + real Celery worker + local runtime) per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import ConsoleStack


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    stack = ConsoleStack(Path(tmp_path_factory.mktemp("console-var")))
    try:
        yield stack.start()
    finally:
        stack.stop()
