"""Shared fixtures: a live console (web + real Celery worker + local runtime) per session, a
model registered on it, and a gcp-storage-emulator server for everything that talks to GCS.

Everything these fixtures build on is in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Registered, register_iris
from tests.support.gcs import GcsEmulator
from tests.support.observed import Observed, observed_deployment
from tests.support.requires import missing_summary
from tests.support.stack import ConsoleStack


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    with ConsoleStack(Path(tmp_path_factory.mktemp("console-var"))) as stack:
        yield stack


@pytest.fixture(scope="session")
def iris_model(console: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """A classification model on the session's console, with two uploaded versions."""
    return register_iris(console, tmp_path_factory.mktemp("iris-models"), "hard-iris")


@pytest.fixture(scope="session")
def observed(console: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Observed:
    """A running deployment with a reference CSV and prediction traffic (its inputs' third
    feature shifted), shared by the observability tests (live API and browser)."""
    return observed_deployment(console, tmp_path_factory.mktemp("observed-models"))


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


# The outermost wrapper, so that the line comes after pytest's own short summary.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """One line at the end: the tests skipped for something missing, and how to install it."""
    yield
    reasons = [
        report.longrepr[2]
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple)
    ]
    line = missing_summary(reasons)
    if line:
        terminalreporter.write_line(line, yellow=True, bold=True)
