"""Prometheus metrics and the structured access log, recorded by one ASGI middleware.

Each app gets its own registry so several apps (tests, the console) can live in one process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any, TextIO

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

access_log = logging.getLogger("serving.access")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000)


class Metrics:
    """The serving metrics: requests, latency, rows, batch sizes, model load time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "serving_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "serving_request_duration_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("serving_rows_predicted", "Rows predicted", registry=r)
        self.batch_rows = Histogram(
            "serving_batch_rows", "Rows per model call", buckets=_BATCH_BUCKETS, registry=r
        )
        self.load_seconds = Gauge(
            "serving_model_load_seconds", "Seconds taken to fetch and load the model", registry=r
        )
        self.model_info = Gauge(
            "serving_model_info", "The served model", ["name", "version", "sha256"], registry=r
        )
        # Tells the replicas behind one endpoint apart. Not the pid: in its sandbox every
        # replica is pid 1. 48 random bits, exact in a float.
        self.instance_id = Gauge(
            "serving_instance_id", "A random id of this serving process", registry=r
        )
        self.instance_id.set(int.from_bytes(os.urandom(6), "big"))
        self.log_dropped = Counter(
            "serving_prediction_log_dropped",
            "Prediction-log records dropped (queue full or sink failing)",
            registry=r,
        )
        self.log_written = Counter(
            "serving_prediction_log_written", "Prediction-log records written", registry=r
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            labels = (route, method, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, rows: int) -> None:
        self.rows.inc(rows)
        self.batch_rows.observe(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class AccessLogWriter:
    """Writes access-log lines to stderr in batches, at most every FLUSH_SECONDS.

    A write per request would be a system call per request, which costs several
    microseconds on virtual machines; lines appear at most FLUSH_SECONDS late.
    """

    FLUSH_SECONDS = 0.05
    MAX_LINES = 512

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []

    def write(self, line: str) -> None:
        if not self._lines:
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no loop: write now
                self._lines.append(line)
                self.flush()
                return
        self._lines.append(line)
        if len(self._lines) >= self.MAX_LINES:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        stream = self._stream or sys.stderr
        stream.write("".join(self._lines))
        self._lines.clear()
        stream.flush()


class AccessLogMiddleware:
    """Pure ASGI middleware: one JSON access-log line and the request metrics per request.

    The line goes to stderr while the "serving.access" logger is enabled for INFO
    (`--log-level warning` turns it off).
    """

    def __init__(self, app: Any, metrics: Metrics, writer: AccessLogWriter | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.writer = writer or AccessLogWriter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # The prediction log's latency starts here (serving/predlog.py).
        scope["serving.started"] = start
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.observe_request(template, method, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                line = {
                    "ts": round(time.time(), 3),
                    "method": method,
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "ms": round(elapsed * 1000, 3),
                    "client": client[0] if client else None,
                }
                self.writer.write(orjson.dumps(line).decode() + "\n")
