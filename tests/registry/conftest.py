"""Two live consoles for the registry tests, one per artifact store (tests/support/registry.py)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.gcs import GcsEmulator
from tests.support.registry import BUCKET, LIMITS, PREFIX, TREE_TYPE, Registry
from tests.support.stack import ConsoleStack


@pytest.fixture(scope="session")
def registries(
    gcs: GcsEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Registry]]:
    gcs.ensure_bucket(BUCKET)
    file_stack = ConsoleStack(Path(tmp_path_factory.mktemp("registry-file")), LIMITS)
    gcs_stack = ConsoleStack(
        Path(tmp_path_factory.mktemp("registry-gcs")),
        {
            **LIMITS,
            "ARTIFACT_STORE": f"gs://{BUCKET}/{PREFIX}",
            "GCS_PROJECT": "test",
            "STORAGE_EMULATOR_HOST": gcs.url,
            "SKOPS_TRUSTED_TYPES": TREE_TYPE,
        },
    )
    stacks = [file_stack, gcs_stack]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ConsoleStack.start, stacks))
        yield {"file": Registry("file", file_stack), "gcs": Registry("gcs", gcs_stack, gcs)}
    finally:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ConsoleStack.stop, stacks))


@pytest.fixture(params=["file", "gcs"])
def registry(request: pytest.FixtureRequest, registries: dict[str, Registry]) -> Registry:
    """Each test using this runs once per store."""
    return registries[request.param]
