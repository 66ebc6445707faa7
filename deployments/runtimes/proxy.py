"""The traffic proxy of a local deployment with a canary or a shadow: it answers on the
deployment's stable port and hands each request to one version's serving processes, chosen by
weight, and a copy to the shadow's, whose answer it reads and drops.

`python -m deployments.runtimes.proxy --listen-fd N --notify-fd M --routes FOLDER/routes.json`
is started by the deployment's supervisor with the stable listening socket as descriptor N.
routes.json (written by the supervisor, re-read when it changes) lists the ready versions:
`{"backends": [{"version", "port", "weight"}], "shadow": {"version", "port"} | null}`.

Why it is built this way (bench/traffic.py measures it against calling serving directly):
- a raw asyncio protocol on uvloop with httptools' parser (the C parser uvicorn uses), HTTP/1.1
  keep-alive on both sides and a pool of idle connections per version: a request costs one
  parse and two socket writes, no framework;
- the request is read whole (predictions are small) and the answer relayed as it arrives;
- smooth weighted round-robin (nginx's) rather than a random draw: 30% is 3 in every 10
  requests, not 30% on average;
- the shadow's copy is written and forgotten: the caller's answer never waits for it, and
  when SHADOW_MAX_IN_FLIGHT copies are unanswered, further copies are dropped and counted.

A connection to a version that closes before answering (a serving process draining in a
rollout, a stale idle connection) is retried on a new connection, then on another version, so
a version leaving the traffic drops no request. On SIGTERM the proxy stops accepting (the
socket stays open for the deployment's other processes), finishes the requests in flight,
closes idle connections and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httptools

SHADOW_MAX_IN_FLIGHT = 64
MAX_BODY_BYTES = 64 * 1024 * 1024
ROUTES_POLL_SECONDS = 0.1
SHUTDOWN_SECONDS = 30.0
ATTEMPTS = 3
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"content-length",
    b"upgrade",
    b"te",
}


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
        self.in_flight = 0
        self.dropped = 0


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


class Upstream(asyncio.Protocol):
    """One keep-alive connection to a backend, carrying one request at a time."""

    def __init__(self, backend: Backend, routes: Routes) -> None:
        self.backend = backend
        self.routes = routes
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.client: ClientConnection | None = None
        self.copy = False  # carrying a shadow copy: its answer is read and dropped
        self.started = False  # the answer's first bytes arrived
        self.done = False
        self.keep_alive = True
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.started = True
        client = self.client
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.keep_alive = False
            self.done = True
        if client is not None:
            client.relay(data)
        if self.done:
            self.finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        with contextlib.suppress(ValueError):
            self.backend.idle.remove(self)
        client, self.client = self.client, None
        if self.copy:
            self.copy = False
            self.backend.in_flight -= 1
        if client is not None and not self.done:
            client.upstream_failed(self.started)

    # httptools callbacks
    def on_message_complete(self) -> None:
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()

    # ours
    def send(self, request: bytes, client: ClientConnection | None) -> None:
        self.client = client
        self.copy = client is None
        self.started = False
        self.done = False
        assert self.transport is not None
        self.transport.write(request)

    def finish(self) -> None:
        client, self.client = self.client, None
        if self.copy:
            self.copy = False
            self.backend.in_flight -= 1
        reusable = self.keep_alive and not self.closed
        if reusable and self.routes.by_port.get(self.backend.port) is self.backend:
            self.parser = httptools.HttpResponseParser(self)
            self.backend.idle.append(self)
        else:
            self.close()
        if client is not None:
            client.answered()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class ClientConnection(asyncio.Protocol):
    """A caller's connection to the stable port; its requests are answered in order."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: list[tuple[bytes, bool]] = []
        self.busy = False
        self.closing = False
        self.head: list[bytes] = []
        self.body: list[bytes] = []
        self.body_size = 0
        self.url = b""
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
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.refuse(400, "Bad Request", "upgrades are not supported on this endpoint")
        except httptools.HttpParserError:
            self.refuse(400, "Bad Request", "the request is not valid HTTP/1.1")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.head = []
        self.body = []
        self.body_size = 0
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in HOP_BY_HOP:
            self.head += (name, b": ", value, b"\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > MAX_BODY_BYTES:
            raise httptools.HttpParserError("body too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        body = b"".join(self.body)
        request = b"".join(
            (
                method,
                b" ",
                self.url,
                b" HTTP/1.1\r\n",
                *self.head,
                b"content-length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )
        self.queue.append((request, self.parser.should_keep_alive()))
        if not self.busy:
            self.next()

    # ours
    def refuse(self, status: int, reason: str, message: str) -> None:
        if self.transport is not None:
            self.transport.write(_plain(status, reason, message))
            self.transport.close()

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
                lambda: Upstream(backend, self.routes), "127.0.0.1", backend.port
            )
        except OSError:
            if client is not None:
                client.upstream_failed(False, backend)
            else:
                backend.in_flight -= 1
                backend.dropped += 1
            return
        upstream.send(request, client)

    def mirror(self, request: bytes) -> None:
        """A copy to the shadow, if any; never waited for."""
        shadow = self.routes.shadow
        if shadow is None:
            return
        if shadow.in_flight >= SHADOW_MAX_IN_FLIGHT:
            shadow.dropped += 1
            return
        shadow.in_flight += 1
        while shadow.idle:
            upstream = shadow.idle.pop()
            if not upstream.closed:
                upstream.send(request, None)
                return
        self.connect(shadow, request, None)

    async def watch_routes(self) -> None:
        while True:
            self.reload()
            await asyncio.sleep(ROUTES_POLL_SECONDS)

    async def serve(self, listener: socket.socket, notify_fd: int) -> None:
        self.reload()
        server = await self.loop.create_server(
            lambda: ClientConnection(self), sock=listener, backlog=1024
        )
        watcher = self.loop.create_task(self.watch_routes())
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
