"""The prediction log: a sample of requests (inputs, outputs, version, latency, request id)
written as JSON lines to a folder or a GCS prefix, in batches, off the request path.

A handler's only cost is `record()`: a random draw, a tuple appended to a deque. A writer
thread drains the deque every `flushSeconds` (or sooner once `batchRecords` have queued),
serializes the batch with orjson and writes one file (or one blob) per batch. When the sink is
slower than the traffic the deque reaches `maxQueue` and further records are dropped and
counted (`serving_prediction_log_dropped_total`): a prediction never waits for the log.

Files are named `<sink>/<YYYY-MM-DD>/<unix ms>-<instance>-<seq>.jsonl`, so replicas writing to
one sink never collide and a reader lists them in time order.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

log = logging.getLogger("serving.predlog")

FILE_SCHEME = "file://"
# Records serialized between two offers of the GIL to the event loop (about 0.5 ms of work):
# without them a batch of thousands keeps the loop waiting a whole switch interval at a time,
# which shows in the requests' p99.
_CHUNK = 100
GCS_SCHEME = "gs://"


class Sink(Protocol):
    def write(self, name: str, data: bytes) -> None:
        """Store `data` under the relative `name` (a day folder and a file name)."""


class FolderSink:
    """JSON-lines files in a local folder (atomic: written aside, then renamed)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def write(self, name: str, data: bytes) -> None:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name("." + path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)


class GcsSink:
    """Blobs under a GCS prefix, through the official client (built lazily, in the writer
    thread: the import is slow and only GCS sinks need it)."""

    def __init__(self, bucket: str, prefix: str, project: str | None = None) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.project = project
        self._bucket: Any = None

    def write(self, name: str, data: bytes) -> None:
        if self._bucket is None:
            from google.cloud import storage

            self._bucket = storage.Client(project=self.project).bucket(self.bucket_name)
        blob_name = f"{self.prefix}/{name}" if self.prefix else name
        blob = self._bucket.blob(blob_name)
        blob.upload_from_string(data, content_type="application/x-ndjson", timeout=30)


def open_sink(uri: str, project: str | None = None) -> Sink:
    """The sink a `logging.sink` URI names (the config has checked its scheme)."""
    if uri.startswith(GCS_SCHEME):
        bucket, _, prefix = uri.removeprefix(GCS_SCHEME).partition("/")
        return GcsSink(bucket, prefix, project)
    return FolderSink(uri.removeprefix(FILE_SCHEME))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        # A tabular model's DataFrame: rows as objects keyed by column (NaN: null), as they
        # may be sent; converted here, in the writer thread, not on the request path.
        return _jsonable(value.astype(object).where(value.notna(), None).to_dict("records"))
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class PredictionLog:
    """Samples prediction records into a bounded queue that a writer thread drains."""

    def __init__(
        self,
        sink: Sink | None,
        *,
        sample: float,
        version: str,
        on_drop: Any = None,
        on_written: Any = None,
        max_queue: int = 10_000,
        batch_records: int = 1000,
        flush_seconds: float = 1.0,
    ) -> None:
        self.sink = sink
        self.sample = sample if sink is not None else 0.0
        self.version = version
        self.max_queue = max_queue
        self.batch_records = batch_records
        self.flush_seconds = flush_seconds
        self._on_drop = on_drop
        self._on_written = on_written
        self._pending: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._instance = os.urandom(4).hex()
        self._seq = 0
        self._random = random.random

    @property
    def enabled(self) -> bool:
        return self.sample > 0

    def record(self, started: float | None, request_id: Any, inputs: Any, outputs: Any) -> None:
        """Queue one answered request (sampled); never blocks. `started` is the request's
        time.perf_counter() at arrival (None: latency unknown); inputs and outputs are kept
        by reference and serialized in the writer thread."""
        if self.sample <= 0 or (self.sample < 1 and self._random() >= self.sample):
            return
        if len(self._pending) >= self.max_queue:
            if self._on_drop is not None:
                self._on_drop()
            return
        now = time.perf_counter()
        latency = (now - started) * 1000 if started is not None else None
        self._pending.append((time.time(), request_id, latency, inputs, outputs))
        if len(self._pending) >= self.batch_records:
            self._wake.set()

    def record_request(
        self, request: Any, inputs: Any, outputs: Any, request_id: Any = None
    ) -> None:
        """`record()` for an HTTP request: its arrival time from the access-log middleware,
        its id from the request (or the `X-Request-ID` header; else one is made up)."""
        if self.sample <= 0:
            return
        if request_id is None:
            for key, value in request.scope["headers"]:
                if key == b"x-request-id":
                    request_id = value.decode("latin-1")
                    break
        self.record(request.scope.get("serving.started"), request_id, inputs, outputs)

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the writer thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stopping
            while self._pending:
                self.flush_once()
            if stopping:
                return

    def flush_once(self) -> int:
        """Write up to `batch_records` queued records as one file; the number written."""
        batch: list[tuple[Any, ...]] = []
        while self._pending and len(batch) < self.batch_records:
            batch.append(self._pending.popleft())
        if not batch or self.sink is None:
            return 0
        self._seq += 1
        lines = []
        dumps, version, option = orjson.dumps, self.version, orjson.OPT_SERIALIZE_NUMPY
        made_up = f"{self._instance}-{self._seq}-"
        for i, (ts, request_id, latency, inputs, outputs) in enumerate(batch):
            record = {
                "ts": ts,
                "request_id": made_up + str(i) if request_id is None else request_id,
                "version": version,
                "latency_ms": latency,
                "inputs": inputs,
                "outputs": outputs,
            }
            try:
                lines.append(dumps(record, option=option))
            except TypeError:  # a numpy view orjson does not take (not C-contiguous)
                record["inputs"], record["outputs"] = _jsonable(inputs), _jsonable(outputs)
                lines.append(dumps(record, option=option))
            if i % _CHUNK == _CHUNK - 1:
                time.sleep(0)  # let the event loop have the GIL between chunks
        first = batch[0][0]
        day = time.strftime("%Y-%m-%d", time.gmtime(first))
        name = f"{day}/{int(first * 1000):013d}-{self._instance}-{self._seq:06d}.jsonl"
        try:
            self.sink.write(name, b"\n".join(lines) + b"\n")
        except Exception as exc:  # a sink failing must not end the writer: count the loss
            log.warning("prediction log: %d records lost: %s", len(batch), exc)
            if self._on_drop is not None:
                for _ in batch:
                    self._on_drop()
            return 0
        if self._on_written is not None:
            self._on_written(len(batch))
        return len(batch)
