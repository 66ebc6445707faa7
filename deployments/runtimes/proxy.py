"""The traffic proxy of a local deployment with a canary or a shadow: it answers on the
deployment's stable port and hands each request to one version's serving processes, chosen by
weight, and a copy to the shadow's, whose answer it reads and drops.

`python -m deployments.runtimes.proxy --listen-fd N --notify-fd M --routes FOLDER/routes.json`
is started by the deployment's supervisor with the stable listening socket as descriptor N.
routes.json (written by the supervisor, re-read when it changes) lists the ready versions:
`{"backends": [{"version", "port", "weight"}], "shadow": {"version", "port"} | null}`. With a
shadow the proxy writes FOLDER/shadow.json twice a second while its counts change:
`{"version", "copies", "answered", "dropped", "queued"}` since the shadow joined the routes.

Why it is built this way (bench/traffic.py measures it against calling serving directly):
- a raw asyncio protocol on uvloop, HTTP/1.1 keep-alive on both sides and a pool of idle
  connections per version: a request costs finding the end of two heads, their Content-Length,
  and two socket writes, no framework and no per-header parsing (a first version parsed every
  header with httptools and rebuilt the request: it served 0.58 of the direct requests/s);
- the request is read whole and forwarded as it came (a chunked body is refused with 411),
  and the answer relayed as it arrives (its end from its Content-Length, else httptools);
- smooth weighted round-robin (nginx's) rather than a random draw: 30% is 3 in every 10
  requests, not 30% on average;
- the shadow is best effort (as the Gateway API's RequestMirror): the caller's answer never
  waits for its copy; SHADOW_CONNECTIONS copies are sent at a time and the rest wait in a
  queue (the request's bytes as they came, no copy made); when SHADOW_MAX_QUEUED copies wait,
  a further one is dropped and counted, as is one whose connection closes before its answer.
  The proxy (one thread, on the primary's path) sends copies only while it has CPU to spare:
  while it used more than SHADOW_BUSY_SHARE of a core in the last ROUTES_POLL_SECONDS, copies
  wait in the queue, and at saturation a copy costs one append or one count. (Time spent
  waiting for a CPU does not count: on an overloaded machine that closed the gate for good.)
  The shadow's serving process runs at a low CPU priority (the supervisor starts it so).

A connection to a version that closes before answering (a serving process draining in a
rollout, a stale idle connection) is retried on a new connection, then on another version, so
a version leaving the traffic drops no request. On SIGTERM the proxy stops accepting (the
socket stays open for the deployment's other processes), finishes the requests in flight,
closes idle connections and exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httptools

SHADOW_CONNECTIONS = 4
SHADOW_MAX_QUEUED = 4096
SHADOW_MAX_QUEUED_BYTES = 16 * 1024 * 1024
SHADOW_REPORT_SECONDS = 0.5
SHADOW_BUSY_SHARE = 0.2
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
ROUTES_POLL_SECONDS = 0.1
SHUTDOWN_SECONDS = 30.0
ATTEMPTS = 3


def _plain(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
    head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


class Backend:
    """One version's serving processes (their private port) and our idle connections to it."""

    def __init__(self, version: str, port: int, weight: int) -> None:
        self.version = version
        self.port = port
        self.weight = weight
        self.current = 0  # smooth weighted round-robin state
        self.idle: list[Upstream] = []
        # As a shadow: copies on their way (at most SHADOW_CONNECTIONS), the ones waiting,
        # and what became of them.
        self.in_flight = 0
        self.pending: collections.deque[bytes] = collections.deque()
        self.pending_bytes = 0
        self.copies = 0
        self.answered = 0
        self.dropped = 0

    def drop_pending(self) -> None:
        self.dropped += len(self.pending)
        self.pending.clear()
        self.pending_bytes = 0


class Routes:
    def __init__(self) -> None:
        self.backends: list[Backend] = []
        self.shadow: Backend | None = None
        self.by_port: dict[int, Backend] = {}

    def load(self, data: dict[str, Any]) -> None:
        """Take a new routes.json, keeping the idle connections of ports still in it."""
        old = self.by_port
        self.by_port = {}

        def backend(entry: dict[str, Any], weight: int) -> Backend:
            port = int(entry["port"])
            found = old.get(port)
            if found is None or found.version != str(entry["version"]):
                found = Backend(str(entry["version"]), port, weight)
            found.weight = weight
            self.by_port[port] = found
            return found

        self.backends = [backend(b, max(0, int(b.get("weight", 0)))) for b in data["backends"]]
        shadow = data.get("shadow")
        self.shadow = backend(shadow, 0) if shadow else None
        for port, gone in old.items():
            if port not in self.by_port:
                for upstream in gone.idle:
                    upstream.close()
                gone.idle.clear()
                gone.drop_pending()

    def pick(self, avoid: set[int] = frozenset()) -> Backend | None:  # type: ignore[assignment]
        """The next version by smooth weighted round-robin (nginx's): every backend gains its
        weight, the largest is chosen and loses the total."""
        candidates = [b for b in self.backends if b.weight > 0 and b.port not in avoid]
        if not candidates:
            others = [b for b in self.backends if b.port not in avoid]
            return others[0] if others else None
        total = 0
        best = candidates[0]
        for b in candidates:
            b.current += b.weight
            total += b.weight
            if b.current > best.current:
                best = b
        best.current -= total
        return best


def _content_length(lower_head: bytes) -> int | None:
    """The Content-Length of a message head (lower-cased), or None when it has none."""
    at = lower_head.find(b"\r\ncontent-length:")
    if at < 0:
        return None
    value_end = lower_head.find(b"\r\n", at + 17)
    return int(lower_head[at + 17 : value_end].strip())


class Upstream(asyncio.Protocol):
    """One keep-alive connection to a backend, carrying one request at a time. The answer is
    relayed as it arrives; its end is found from its head's Content-Length (serving's answers
    have one), else by httptools' parser (chunked)."""

    def __init__(self, backend: Backend, proxy: Proxy) -> None:
        self.backend = backend
        self.proxy = proxy
        self.routes = proxy.routes
        self.transport: asyncio.Transport | None = None
        self.client: ClientConnection | None = None
        self.copy = False  # carrying a shadow copy: its answer is read and dropped
        self.started = False  # the answer's first bytes arrived
        self.done = False
        self.keep_alive = True
        self.closed = False
        self.head = b""
        self.bodiless = False
        self.remaining = -1  # body bytes still to come; -1 while the head is incomplete
        self.parser: httptools.HttpResponseParser | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.started = True
        if self.client is not None:
            self.client.relay(data)
        if self.parser is not None:
            self._parse(data)
        elif self.remaining < 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end >= 0:
                lower = self.head[: end + 2].lower()
                length = _content_length(lower)
                if self.bodiless or lower[9:12] in (b"204", b"304"):
                    length = 0  # an answer to HEAD, or one that never has a body
                if length is None:  # chunked, or up to the close: the full parser decides
                    self.parser = httptools.HttpResponseParser(self)
                    self._parse(self.head)
                else:
                    self.keep_alive = b"\r\nconnection: close" not in lower
                    self.remaining = length - (len(self.head) - end - 4)
                self.head = b""
        else:
            self.remaining -= len(data)
        if self.remaining == 0 or self.done:
            self.done = True
            self.finish()

    def _parse(self, data: bytes) -> None:
        assert self.parser is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.keep_alive = False
            self.done = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        with contextlib.suppress(ValueError):
            self.backend.idle.remove(self)
        client, self.client = self.client, None
        if self.copy:
            self.copy = False
            self.proxy.copy_ended(self.backend, answered=False)
        if client is not None and not self.done:
            client.upstream_failed(self.started)

    # httptools callbacks (chunked answers only)
    def on_message_complete(self) -> None:
        self.done = True
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()

    # ours
    def send(self, request: bytes, client: ClientConnection | None) -> None:
        self.client = client
        self.copy = client is None
        self.bodiless = request.startswith(b"HEAD ")
        self.started = False
        self.done = False
        self.remaining = -1
        self.parser = None
        assert self.transport is not None
        self.transport.write(request)

    def finish(self) -> None:
        client, self.client = self.client, None
        copy, self.copy = self.copy, False
        reusable = self.keep_alive and not self.closed
        if reusable and self.routes.by_port.get(self.backend.port) is self.backend:
            self.backend.idle.append(self)
        else:
            self.close()
        if copy:
            self.proxy.copy_ended(self.backend, answered=True)  # the next copy may take us
        if client is not None:
            client.answered()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class ClientConnection(asyncio.Protocol):
    """A caller's connection to the stable port; its requests are answered in order and
    forwarded as they came (framed by Content-Length; a chunked body is refused with 411)."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.needed = -1  # bytes of the request being read; -1 while its head is incomplete
        self.request_keep_alive = True
        self.queue: list[tuple[bytes, bool]] = []
        self.busy = False
        self.closing = False
        self.keep_alive = True
        self.request: bytes = b""
        self.attempts = 0
        self.tried: set[int] = set()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.proxy.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy.clients.discard(self)
        self.transport = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            if self.needed < 0 and not self._head():
                return
            if len(self.buffer) < self.needed:
                return
            request = bytes(self.buffer[: self.needed])
            del self.buffer[: self.needed]
            self.needed = -1
            self.queue.append((request, self.request_keep_alive))
            if not self.busy:
                self.next()

    def _head(self) -> bool:
        """Read the next request's head: True once its length is known."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self.refuse(431, "Request Header Fields Too Large", "the request head is too large")
            return False
        lower = bytes(self.buffer[: end + 2]).lower()
        line_end = lower.find(b"\r\n")
        request_line = lower[:line_end]
        if not request_line.endswith((b" http/1.1", b" http/1.0")):
            self.refuse(400, "Bad Request", "the request is not valid HTTP/1.1")
            return False
        if b"\r\ntransfer-encoding:" in lower:
            self.refuse(411, "Length Required", "send the body with a Content-Length")
            return False
        if b"\r\nupgrade:" in lower:
            self.refuse(400, "Bad Request", "upgrades are not supported on this endpoint")
            return False
        try:
            length = _content_length(lower) or 0
        except ValueError:
            self.refuse(400, "Bad Request", "the Content-Length is not a number")
            return False
        if length > MAX_BODY_BYTES:
            self.refuse(413, "Payload Too Large", "the request body is too large")
            return False
        if request_line.endswith(b"1.1"):
            self.request_keep_alive = b"\r\nconnection: close" not in lower
        else:
            self.request_keep_alive = b"\r\nconnection: keep-alive" in lower
        self.needed = end + 4 + length
        return True

    # ours
    def refuse(self, status: int, reason: str, message: str) -> None:
        if self.transport is not None:
            self.transport.write(_plain(status, reason, message))
            self.transport.close()
            self.transport = None

    def next(self) -> None:
        if not self.queue or self.transport is None:
            self.busy = False
            if self.closing and self.transport is not None:
                self.transport.close()
            return
        self.busy = True
        self.request, self.keep_alive = self.queue[0]
        self.attempts = 0
        self.tried = set()
        self.proxy.mirror(self.request)
        self.dispatch(reuse=True)

    def dispatch(self, *, reuse: bool) -> None:
        backend = self.proxy.routes.pick(self.tried)
        if backend is None or self.attempts >= ATTEMPTS:
            self.keep_alive = False
            self.relay(_plain(502, "Bad Gateway", "no serving process of this deployment answered"))
            self.answered()
            return
        self.attempts += 1
        upstream = None
        while reuse and backend.idle:
            candidate = backend.idle.pop()
            if not candidate.closed:
                upstream = candidate
                break
        if upstream is not None:
            upstream.send(self.request, self)
            return
        self.proxy.connect(backend, self.request, self)

    def upstream_failed(self, started: bool, backend: Backend | None = None) -> None:
        """The version closed the connection (or refused it) before answering."""
        if self.transport is None:
            return
        if started:
            self.transport.close()  # half an answer was relayed: the caller must see it fail
            return
        if backend is not None:
            self.tried.add(backend.port)  # refused: try another version
        self.dispatch(reuse=False)

    def relay(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def answered(self) -> None:
        if self.queue:
            self.queue.pop(0)
        if not self.keep_alive or (self.closing and not self.queue):
            if self.transport is not None:
                self.transport.close()
            self.busy = False
            return
        self.next()


class Proxy:
    def __init__(self, routes_path: Path) -> None:
        self.routes_path = routes_path
        self.routes = Routes()
        self.clients: set[ClientConnection] = set()
        self.routes_mtime = -1
        self.shadow_path = routes_path.with_name("shadow.json")
        self.shadow_reported: dict[str, Any] | None = None
        self.busy = False  # used more than SHADOW_BUSY_SHARE of a core lately: copies wait
        self.loop = asyncio.get_running_loop()

    def reload(self) -> None:
        try:
            mtime = self.routes_path.stat().st_mtime_ns
            if mtime == self.routes_mtime:
                return
            data = json.loads(self.routes_path.read_text())
        except (OSError, ValueError):
            return  # being replaced: keep the routes we have
        self.routes_mtime = mtime
        self.routes.load(data)

    def connect(self, backend: Backend, request: bytes, client: ClientConnection | None) -> None:
        task = self.loop.create_task(self._connect(backend, request, client))
        task.add_done_callback(_ignore)

    async def _connect(
        self, backend: Backend, request: bytes, client: ClientConnection | None
    ) -> None:
        try:
            _, upstream = await self.loop.create_connection(
                lambda: Upstream(backend, self), "127.0.0.1", backend.port
            )
        except OSError:
            if client is not None:
                client.upstream_failed(False, backend)
            else:
                self.copy_ended(backend, answered=False)
            return
        upstream.send(request, client)

    def mirror(self, request: bytes) -> None:
        """A copy to the shadow, if any: sent, queued or, past the queue's bounds, dropped;
        never waited for."""
        shadow = self.routes.shadow
        if shadow is None:
            return
        shadow.copies += 1
        if shadow.in_flight < SHADOW_CONNECTIONS and not self.busy:
            self.send_copy(shadow, request)
        elif (
            len(shadow.pending) < SHADOW_MAX_QUEUED
            and shadow.pending_bytes + len(request) <= SHADOW_MAX_QUEUED_BYTES
        ):
            shadow.pending.append(request)
            shadow.pending_bytes += len(request)
        else:
            shadow.dropped += 1

    def send_copy(self, shadow: Backend, request: bytes) -> None:
        shadow.in_flight += 1
        while shadow.idle:
            upstream = shadow.idle.pop()
            if not upstream.closed:
                upstream.send(request, None)
                return
        self.connect(shadow, request, None)

    def copy_ended(self, shadow: Backend, *, answered: bool) -> None:
        """A copy was answered (or its connection failed: dropped); the next one waiting goes."""
        shadow.in_flight -= 1
        if answered:
            shadow.answered += 1
        else:
            shadow.dropped += 1
        if shadow is not self.routes.shadow:
            shadow.drop_pending()
        elif not self.busy:
            self.send_pending(shadow)

    def send_pending(self, shadow: Backend) -> None:
        while shadow.pending and shadow.in_flight < SHADOW_CONNECTIONS:
            request = shadow.pending.popleft()
            shadow.pending_bytes -= len(request)
            self.send_copy(shadow, request)

    def report_shadow(self) -> None:
        """shadow.json: what became of the shadow's copies, when it changed."""
        shadow = self.routes.shadow
        if shadow is None:
            return
        report = {
            "version": shadow.version,
            "copies": shadow.copies,
            "answered": shadow.answered,
            "dropped": shadow.dropped,
            "queued": len(shadow.pending) + shadow.in_flight,
        }
        if report == self.shadow_reported:
            return
        with contextlib.suppress(OSError):
            partial = self.shadow_path.with_name("shadow.json.partial")
            partial.write_text(json.dumps(report))
            partial.replace(self.shadow_path)
            self.shadow_reported = report

    async def watch_shadow(self) -> None:
        while True:
            self.report_shadow()
            await asyncio.sleep(SHADOW_REPORT_SECONDS)

    async def watch_routes(self) -> None:
        cpu, wall = time.process_time(), time.monotonic()
        while True:
            self.reload()
            await asyncio.sleep(ROUTES_POLL_SECONDS)
            before = cpu, wall
            cpu, wall = time.process_time(), time.monotonic()
            self.busy = cpu - before[0] > SHADOW_BUSY_SHARE * (wall - before[1])
            if not self.busy and self.routes.shadow is not None:
                self.send_pending(self.routes.shadow)

    async def serve(self, listener: socket.socket, notify_fd: int) -> None:
        self.reload()
        server = await self.loop.create_server(
            lambda: ClientConnection(self), sock=listener, backlog=1024
        )
        watcher = self.loop.create_task(self.watch_routes())
        reporter = self.loop.create_task(self.watch_shadow())
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, stop.set)
        with contextlib.suppress(OSError):
            os.write(notify_fd, b"ready\n")
            os.close(notify_fd)
        await stop.wait()
        # Stop accepting: the socket's queue stays with the deployment's other processes.
        server.close()
        for client in list(self.clients):
            client.closing = True
            if not client.busy and client.transport is not None:
                client.transport.close()
        deadline = self.loop.time() + SHUTDOWN_SECONDS
        while self.clients and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        watcher.cancel()
        reporter.cancel()
        if self.routes.shadow is not None:
            self.routes.shadow.drop_pending()  # never sent: counted as dropped
        self.report_shadow()


def _ignore(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


def main(argv: list[str]) -> int:
    listener = socket.socket(fileno=int(argv[argv.index("--listen-fd") + 1]))
    notify_fd = int(argv[argv.index("--notify-fd") + 1])
    routes = Path(argv[argv.index("--routes") + 1])
    import uvloop  # a requirement of serving, which the console includes

    async def run() -> None:
        await Proxy(routes).serve(listener, notify_fd)

    uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
