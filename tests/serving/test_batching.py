"""Micro-batching: concurrent requests share model calls and each gets exactly its own rows."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time

import httpx
import numpy as np
import pytest

from serving.batching import MicroBatcher
from serving.errors import PredictionFailed


def batch_calls(metrics_text: str) -> float:
    match = re.search(r"^serving_batch_rows_count ([0-9.e+]+)$", metrics_text, re.M)
    assert match, metrics_text
    return float(match.group(1))


def test_200_concurrent_mixed_size_requests_each_get_their_own_rows(iris_server, iris) -> None:
    model, X = iris
    rng = random.Random(7)
    bodies = []
    for _ in range(200):
        n = rng.choice([1, 1, 1, 2, 5, 17, 64])
        bodies.append(rng.sample(range(len(X)), n))
    calls_before = batch_calls(httpx.get(f"{iris_server.url}/metrics").text)

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(client.post(f"{iris_server.url}/predict", json=X[idx].tolist()) for idx in bodies)
            )

    responses = asyncio.run(fire())
    for idx, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(
            response.json()["predictions"], model.predict_proba(X[idx]), rtol=0, atol=1e-9
        )
    calls = batch_calls(httpx.get(f"{iris_server.url}/metrics").text) - calls_before
    assert calls < 200, "concurrent requests should have shared model calls"


def _slow_run(delay: float):
    calls: list[int] = []

    def run(output: str, matrix: np.ndarray) -> np.ndarray:
        time.sleep(delay)
        if (matrix[:, 0] < 0).any():
            raise PredictionFailed("predict failed: negative first feature")
        calls.append(matrix.shape[0])
        return matrix[:, 0] * 10 if output == "predict" else matrix * 2

    return run, calls


def test_batches_respect_max_rows_and_keep_order() -> None:
    run, calls = _slow_run(0.005)
    batcher = MicroBatcher(run, max_batch_rows=8)

    async def main() -> list[np.ndarray]:
        inputs = [np.full((n, 2), i, dtype=float) for i, n in enumerate([1, 3, 2, 5, 1, 1, 4] * 4)]
        results = await asyncio.gather(*(batcher.predict("predict", m) for m in inputs))
        for m, r in zip(inputs, results, strict=True):
            np.testing.assert_array_equal(r, m[:, 0] * 10)
        return results

    try:
        asyncio.run(main())
    finally:
        batcher.stop()
    assert max(calls) <= 8
    assert len(calls) < 28


def test_a_failing_request_fails_alone() -> None:
    run, _ = _slow_run(0.002)
    batcher = MicroBatcher(run, max_batch_rows=64)

    async def main() -> list[object]:
        inputs = [np.full((2, 3), -1.0 if i == 5 else float(i)) for i in range(12)]
        return await asyncio.gather(
            *(batcher.predict("predict_proba", m) for m in inputs), return_exceptions=True
        )

    try:
        results = asyncio.run(main())
    finally:
        batcher.stop()
    for i, result in enumerate(results):
        if i == 5:
            assert isinstance(result, PredictionFailed)
            assert "negative first feature" in str(result)
        else:
            np.testing.assert_array_equal(result, np.full((2, 3), 2.0 * i))


@pytest.mark.parametrize("kw", [{"enabled": False}, {"max_wait_ms": 2.0}])
def test_batching_off_or_with_a_wait_still_answers_correctly(kw) -> None:
    run, calls = _slow_run(0.001)
    batcher = MicroBatcher(run, **kw)

    async def main() -> None:
        inputs = [np.full((1, 2), float(i)) for i in range(10)]
        results = await asyncio.gather(*(batcher.predict("predict", m) for m in inputs))
        assert [r.tolist() for r in results] == [[10.0 * i] for i in range(10)]

    try:
        asyncio.run(main())
    finally:
        batcher.stop()
    if kw.get("enabled") is False:
        assert calls == [1] * 10


def test_cheap_calls_run_on_the_event_loop_coalesced_per_iteration() -> None:
    threads: list[int] = []
    calls: list[int] = []

    def run(output: str, matrix: np.ndarray) -> np.ndarray:
        threads.append(threading.get_ident())
        calls.append(matrix.shape[0])
        if (matrix[:, 0] < 0).any():
            raise PredictionFailed("predict failed: negative first feature")
        return matrix * 3

    batcher = MicroBatcher(run, max_batch_rows=16, inline_below_ms=50)

    async def main() -> tuple[list[object], int]:
        await batcher.predict("predict_proba", np.ones((1, 2)))  # measured in the thread
        loop_thread = threading.get_ident()
        calls.clear()
        threads.clear()
        inputs = [
            np.full((n, 2), -1.0 if i == 3 else float(i)) for i, n in enumerate([1, 2, 5] * 6)
        ]
        results = await asyncio.gather(
            *(batcher.predict("predict_proba", m) for m in inputs), return_exceptions=True
        )
        for i, (m, r) in enumerate(zip(inputs, results, strict=True)):
            if i == 3:
                assert isinstance(r, PredictionFailed)
            else:
                np.testing.assert_array_equal(r, m * 3)
        return results, loop_thread

    try:
        _, loop_thread = asyncio.run(main())
    finally:
        batcher.stop()
    assert set(threads) == {loop_thread}
    assert max(calls) <= 16
    assert len(calls) < 18 + 6  # coalesced, even with the failing batch retried item by item
