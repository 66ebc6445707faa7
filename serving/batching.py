"""Adaptive micro-batching: concurrent requests share one model call.

scikit-learn pays a large fixed cost per call (bench/serving.py measures it), so requests
that arrive while the model is busy are concatenated into the next call, and each caller gets
back exactly its own rows. Nothing waits on a timer when the model is idle (unless
max_wait_ms asks for it), so a lone request pays no batching delay beyond one extra pass of
the event loop.

Where a call runs depends on what it costs, measured as a moving average per output:

- Slow calls (a forest, a neural network) run in one dedicated model thread, so the event
  loop keeps accepting and answering connections meanwhile.
- Calls cheaper than `inline_below_ms` run on the event loop itself, for everything queued
  until the loop has polled for I/O once more. For such models a thread buys nothing (the call
  holds the GIL throughout) and costs two thread hand-offs per batch plus GIL convoys that
  measured here as milliseconds of queueing at 8 connections; blocking the loop for well
  under a millisecond per batch costs far less.
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

from serving.errors import ModelNotReady, PredictionFailed
from serving.tabular import concat

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
_SMOOTHING = 0.2  # weight of the newest call in the moving average of call durations


class MicroBatcher:
    """Coalesces concurrent predictions into model calls, inline or in the model thread."""

    def __init__(
        self,
        run: RunFn,
        *,
        enabled: bool = True,
        max_batch_rows: int = 256,
        max_wait_ms: float = 0.0,
        inline_below_ms: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._run = run
        self._enabled = enabled
        self._max_rows = max_batch_rows
        self._max_wait = max_wait_ms / 1000.0
        self._inline_below = inline_below_ms / 1000.0
        self._on_batch = on_batch
        self._cost: dict[str, float] = {}  # moving average of seconds per call, per output
        self._calls = 0
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._pending: list[_Item] = []  # inline path: queued in this loop iteration
        self._flush_scheduled = False

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

    def record_cost(self, output: str, seconds: float) -> None:
        """Fold one call's duration into the moving average that picks inline or thread."""
        previous = self._cost.get(output)
        self._cost[output] = (
            seconds if previous is None else previous + _SMOOTHING * (seconds - previous)
        )

    def predict(self, output: str, matrix: np.ndarray) -> asyncio.Future[np.ndarray]:
        """Run `output` (predict or predict_proba) on these rows; await the result, which holds
        exactly their rows. A plain function returning a future, not a coroutine: a handler
        awaiting it directly is one frame shallower to suspend and resume."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray]
        if self._stopped:
            future = loop.create_future()
            future.set_exception(ModelNotReady("the server is shutting down"))
            return future
        future = loop.create_future()
        item = _Item(output, matrix, future, loop)
        cost = self._cost.get(output)
        if cost is not None and cost < self._inline_below:
            self._pending.append(item)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                if self._max_wait > 0:
                    loop.call_later(self._max_wait, self._flush_inline)
                else:
                    # Two hops: the flush runs after the loop's next poll for I/O and after the
                    # handlers that poll started, so requests whose bytes arrived meanwhile
                    # share the call. One hop (only the handlers already scheduled) measured
                    # 20% fewer requests/s at 8 connections; at 1 connection the extra empty
                    # iteration costs nothing measurable.
                    loop.call_soon(loop.call_soon, self._flush_inline)
        else:
            if self._thread is None:
                self.start()
            self._queue.put(item)
        return future

    # --- event loop path ------------------------------------------------------------------------

    def _flush_inline(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        for batch in self._batches(pending):
            _set_results(self._process_safely(batch))

    def _batches(self, items: list[_Item]) -> list[list[_Item]]:
        """Split items into batches of one output each, at most max rows (one item at least)."""
        if not self._enabled:
            return [[item] for item in items]
        batches: list[list[_Item]] = []
        open_batches: dict[str, tuple[list[_Item], int]] = {}
        for item in items:
            n = item.matrix.shape[0]
            batch, rows = open_batches.get(item.output, (None, 0))
            if batch is None or rows + n > self._max_rows:
                batch, rows = [], 0
                batches.append(batch)
            batch.append(item)
            open_batches[item.output] = (batch, rows + n)
        return batches

    # --- model thread ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            assert isinstance(first, _Item)
            items = [first]
            if self._enabled:
                self._collect(items)
            # One call per output: an OIP request for every output of a classifier queues
            # predict_proba and predict alternately, which batched in arrival order would make
            # every batch a single request.
            for batch in self._batches(items):
                _settle(self._process_safely(batch))

    def _collect(self, items: list[_Item]) -> None:
        """Add queued items (any output) to items, up to max rows in all."""
        rows = items[0].matrix.shape[0]
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
                self._queue.put(_STOP)  # the loop ends once this collection is answered
                break
            assert isinstance(item, _Item)
            items.append(item)
            rows += item.matrix.shape[0]

    # --- both paths -----------------------------------------------------------------------------

    def _process_safely(self, batch: list[_Item]) -> list[Answer]:
        """_process, with any unexpected error answered to the batch instead of losing it."""
        try:
            return self._process(batch)
        except Exception as exc:
            error = PredictionFailed(f"prediction failed: {type(exc).__name__}: {exc}")
            return [(item, None, error) for item in batch]

    def _process(self, batch: list[_Item]) -> list[Answer]:
        """One model call for the batch; a failure is retried item by item to isolate it."""
        output = batch[0].output
        matrix = batch[0].matrix if len(batch) == 1 else concat([item.matrix for item in batch])
        # Timing every call costs more than it tells once the average has settled (clock reads
        # are slow on some virtual machines), so after the first calls only every 8th is timed.
        self._calls += 1
        timed = self._calls <= 16 or self._calls % 8 == 0
        started = time.perf_counter() if timed else 0.0
        try:
            result = self._run(output, matrix)
        except Exception as exc:
            if len(batch) == 1:
                return [(batch[0], None, exc)]
            # Which request broke the batch is unknown: retry each alone so only it fails.
            return [answer for item in batch for answer in self._process([item])]
        if timed:
            self.record_cost(output, time.perf_counter() - started)
        if self._on_batch is not None:
            self._on_batch(matrix.shape[0])
        if len(batch) == 1:
            return [(batch[0], result, None)]
        answers: list[Answer] = []
        start = 0
        for item in batch:
            end = start + item.matrix.shape[0]
            answers.append((item, result[start:end], None))
            start = end
        return answers


def _settle(answers: list[Answer]) -> None:
    """From the model thread: hand results to their event loops, one wake-up per loop."""
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
