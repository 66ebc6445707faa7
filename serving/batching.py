"""Adaptive micro-batching: concurrent requests share one model call in a dedicated thread.

scikit-learn pays a large fixed cost per call (DESIGN.md 6), so rows that queue up while the
model is busy are concatenated into the next call. Nothing waits when the model is idle
(unless max_wait_ms asks it to), so a lone request pays no batching delay. The model runs in
its own thread so the event loop keeps accepting and answering connections meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from serving.errors import ModelNotReady

RunFn = Callable[[str, np.ndarray], np.ndarray]


@dataclass(slots=True)
class _Item:
    output: str
    matrix: np.ndarray
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop


# (request, its rows' results, or the error it gets)
Answer = tuple[_Item, "np.ndarray | None", "BaseException | None"]

_STOP = object()


class MicroBatcher:
    """Queue of pending requests drained by one model thread."""

    def __init__(
        self,
        run: RunFn,
        *,
        enabled: bool = True,
        max_batch_rows: int = 256,
        max_wait_ms: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
        on_thread_start: Callable[[], None] | None = None,
    ) -> None:
        self._run = run
        self._enabled = enabled
        self._max_rows = max_batch_rows
        self._max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch
        self._on_thread_start = on_thread_start
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Start the model thread (idempotent; predict() also starts it on first use)."""
        with self._lock:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._loop, name="model", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish queued work, then end the model thread."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        # Anything queued after the stop marker (a race with shutdown) is answered, not lost.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Item):
                _settle([(item, None, ModelNotReady("the server is shutting down"))])

    async def predict(self, output: str, matrix: np.ndarray) -> np.ndarray:
        """Run `output` (predict or predict_proba) on these rows; returns exactly their results."""
        if self._thread is None:
            self.start()
        if self._stopped:
            raise ModelNotReady("the server is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.put(_Item(output, matrix, future, loop))
        return await future

    # --- model thread -------------------------------------------------------------------------

    def _loop(self) -> None:
        if self._on_thread_start is not None:
            self._on_thread_start()
        carry: _Item | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is _STOP:
                return
            assert isinstance(first, _Item)
            batch = [first]
            if self._enabled:
                carry, stop = self._collect(batch)
                if stop:
                    self._process(batch)
                    return
            self._process(batch)

    def _collect(self, batch: list[_Item]) -> tuple[_Item | None, bool]:
        """Add queued items of the same output to batch, up to max rows. Returns (carry, stop)."""
        rows = batch[0].matrix.shape[0]
        deadline = None
        while rows < self._max_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                if self._max_wait <= 0:
                    break
                if deadline is None:
                    deadline = time.monotonic() + self._max_wait
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is _STOP:
                return None, True
            assert isinstance(item, _Item)
            n = item.matrix.shape[0]
            if item.output != batch[0].output or rows + n > self._max_rows:
                return item, False
            batch.append(item)
            rows += n
        return None, False

    def _process(self, batch: list[_Item]) -> None:
        output = batch[0].output
        matrix = (
            batch[0].matrix
            if len(batch) == 1
            else np.concatenate([item.matrix for item in batch], axis=0)
        )
        try:
            result = self._run(output, matrix)
        except Exception as exc:
            if len(batch) == 1:
                _settle([(batch[0], None, exc)])
                return
            # Which request broke the batch is unknown: retry each alone so only it fails.
            for item in batch:
                self._process([item])
            return
        if self._on_batch is not None:
            self._on_batch(matrix.shape[0])
        answers: list[Answer] = []
        start = 0
        for item in batch:
            end = start + item.matrix.shape[0]
            answers.append((item, result[start:end], None))
            start = end
        _settle(answers)


def _settle(answers: list[Answer]) -> None:
    """Hand results back to their event loops: one wake-up per loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Answer]] = {}
    for answer in answers:
        by_loop.setdefault(answer[0].loop, []).append(answer)
    for loop, group in by_loop.items():
        # A closed loop means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_set_results, group)


def _set_results(answers: list[Answer]) -> None:
    for item, result, exc in answers:
        if item.future.done():  # the caller went away (cancelled)
            continue
        if exc is not None:
            item.future.set_exception(exc)
        else:
            item.future.set_result(result)  # type: ignore[arg-type]
