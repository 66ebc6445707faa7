"""The console's web worker: gunicorn's threaded worker, changed so that slow clients cannot hold
the threads that serve everyone else.

gunicorn's gthread worker hands a connection to a thread as soon as it has a byte to read, and
the thread then reads the request with blocking calls and no time limit: a few dozen clients
that send a byte now and then, or that connect and send nothing, hold every thread and the
console stops answering. Here the worker's event loop reads each request, head and body, before
a thread takes it, and drops a client that has not sent its head within HEAD_SECONDS or then
falls below MIN_BYTES_PER_SECOND. Only bodies the console would not buffer anyway (larger than
DATA_UPLOAD_MAX_MEMORY_SIZE: artifact uploads, refused early unless they come from a deployer;
chunked ones) are read by the thread, under the same rate, with a shorter grace.

Behind a proxy that buffers whole requests (the Helm chart's ingress) none of this is reached.
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import time
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

HEAD_SECONDS = 15.0
HEAD_LIMIT_BYTES = 64 * 1024
MIN_BYTES_PER_SECOND = 64 * 1024
THREAD_GRACE_SECONDS = 5.0
SEND_SECONDS = 60.0
# What the event loops of one worker process hold at most in request bodies being read.
BUFFER_BUDGET_BYTES = 256 * 1024**2

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,12})[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue", re.IGNORECASE)


def buffered_length(head: bytes) -> int:
    """How much of the body the event loop reads: all of it, unless it is larger than the
    console buffers (DATA_UPLOAD_MAX_MEMORY_SIZE) or chunked; then the thread reads it."""
    from django.conf import settings

    if _CHUNKED.search(head):
        return 0
    match = _CONTENT_LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    return length if length <= (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) else 0


class SlowClient(TimeoutError):
    """Raised by a read that ran out of time. It carries ECONNRESET, which gunicorn takes as a
    client gone away: the connection is closed without a traceback in the log."""

    def __init__(self) -> None:
        super().__init__(errno.ECONNRESET, "the client sent its request too slowly")


class DeadlineSocket:
    """A client connection whose reads in a thread, from the first one of a request, must keep
    up with MIN_BYTES_PER_SECOND after THREAD_GRACE_SECONDS. Everything else is the socket's."""

    def __init__(self, sock: socket.socket) -> None:
        self.raw = sock
        self.new_request()

    def __getattr__(self, name: str):
        return getattr(self.raw, name)

    def new_request(self) -> None:
        self._started: float | None = None
        self._received = 0
        self.no_wait = False

    def shutdown(self, how: int) -> None:
        # gunicorn then drains what the client still sends; take only what has arrived.
        self.no_wait = True
        self.raw.shutdown(how)

    def recv(self, size: int, *flags: int) -> bytes:
        if self.no_wait:
            self.raw.setblocking(False)
            try:
                return self.raw.recv(size, *flags)
            except BlockingIOError:
                raise SlowClient() from None
        now = time.monotonic()
        if self._started is None:
            self._started = now
        deadline = self._started + THREAD_GRACE_SECONDS + self._received / MIN_BYTES_PER_SECOND
        if deadline <= now:
            raise SlowClient()
        self.raw.settimeout(min(deadline - now, HEAD_SECONDS))
        try:
            data = self.raw.recv(size, *flags)
        except TimeoutError:
            raise SlowClient() from None
        self._received += len(data)
        return data

    def send(self, data: bytes, *flags: int) -> int:
        self.raw.settimeout(SEND_SECONDS)
        return self.raw.send(data, *flags)

    def sendall(self, data: bytes, *flags: int) -> None:
        self.raw.settimeout(SEND_SECONDS)
        self.raw.sendall(data, *flags)

    def sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
        self.raw.settimeout(SEND_SECONDS)
        return self.raw.sendfile(file, offset, count)


class TimedThreadWorker(ThreadWorker):
    """`gunicorn -k console.web_worker.TimedThreadWorker --threads N`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reading: list[TConn] = []  # connections whose request is being read
        self.buffered = 0  # bytes of theirs held

    def accept(self, listener: socket.socket) -> None:
        if self.cfg.is_ssl:  # TLS is the ingress's job; keep gunicorn's own path for it
            return super().accept(listener)
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, DeadlineSocket(client), address, listener.getsockname())
        self.read_request(conn)

    def on_client_socket_readable(self, conn: TConn, client: object) -> None:
        """A kept-alive connection's next request: its head is read without a thread too."""
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.read_request(conn)

    def read_request(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.head = bytearray()
        conn.wanted = None
        conn.started = time.monotonic()
        conn.timeout = conn.started + HEAD_SECONDS
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_request_bytes, conn))

    def on_request_bytes(self, conn: TConn, client: object) -> None:
        try:
            data = conn.sock.raw.recv(HEAD_LIMIT_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        seen = len(conn.head)
        conn.head += data
        self.buffered += len(data)
        if conn.wanted is None:
            end = conn.head.find(b"\r\n\r\n", max(0, seen - 3))
            if end < 0:
                if len(conn.head) > HEAD_LIMIT_BYTES:
                    self.hand_over(conn)  # gunicorn's parser answers with the right error
                return
            head = bytes(conn.head[: end + 2])
            conn.wanted = end + 4 + buffered_length(head)
            if conn.wanted > end + 4 and _EXPECT_CONTINUE.search(head):
                # The client waits for this before sending its body; gunicorn sends its own
                # later, and a client takes any number of 1xx answers.
                with contextlib.suppress(OSError):
                    conn.sock.raw.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        # Past the head, the body must keep coming at MIN_BYTES_PER_SECOND.
        conn.timeout = conn.started + HEAD_SECONDS + len(conn.head) / MIN_BYTES_PER_SECOND
        if len(conn.head) >= conn.wanted or self.buffered > BUFFER_BUDGET_BYTES:
            self.hand_over(conn)

    def hand_over(self, conn: TConn) -> None:
        """To a thread, with what was read put back in front of the parser."""
        self.poller.unregister(conn.sock)
        self.reading.remove(conn)
        self.buffered -= len(conn.head)
        conn.init()
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        conn.data_ready = True
        self.enqueue_req(conn)

    def handle(self, conn: TConn):
        # Each request starts its own deadline, a pipelined one handed on directly included.
        if isinstance(conn.sock, DeadlineSocket):
            conn.sock.new_request()
        return super().handle(conn)

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        """A body the application left unread is drained only as far as it has arrived:
        waiting for the rest of a slow client's body would hold this thread."""
        if not isinstance(conn.sock, DeadlineSocket):
            return super()._keepalive_after(conn, keepalive)
        conn.sock.no_wait = True
        try:
            return super()._keepalive_after(conn, keepalive)
        finally:
            conn.sock.no_wait = False

    def drop(self, conn: TConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        with contextlib.suppress(ValueError):
            self.reading.remove(conn)
        self.buffered -= len(conn.head)
        conn.head = bytearray()
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c in self.reading if c.timeout <= now]:
            self.drop(conn)
