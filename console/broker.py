"""The embedded task broker: kombu's SQLAlchemy transport on a SQLite file under var/.

Every message is a row inserted (and taken) in one transaction, so several producers and a
worker cannot lose or half-read one. The file runs in WAL mode: writers append, readers do not
block them, and a busy writer makes others wait (`timeout`) instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.transport import sqlalchemy
from sqlalchemy.pool import NullPool

# Seconds a producer or the worker waits for another's write to finish before giving up.
BUSY_TIMEOUT_SECONDS = 30
POLLING_SECONDS = 0.05
EMBEDDED_PREFIX = "sqla+sqlite:///"
# The longest a worker waits for a message before it does its pending acknowledgements.
MAX_WAIT_SECONDS = 0.1


def embedded_broker_options(url: str) -> dict[str, Any]:
    """Prepare the broker's SQLite file named by `url` (sqla+sqlite:///PATH) and return the
    transport options (passed by kombu to SQLAlchemy's create_engine)."""
    path = Path(url.removeprefix(EMBEDDED_PREFIX))
    path.parent.mkdir(parents=True, exist_ok=True)
    # WAL is a property of the file: set once, every later connection uses it.
    with sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS) as conn:
        conn.execute("PRAGMA journal_mode=WAL")

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
        # In WAL mode NORMAL loses no message when a process dies (only on a power cut), and
        # saves an fsync per message: the write lock is held a fraction as long, which is
        # what several producers and the worker queue for.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return {
        "creator": connect,
        # No pooled connections: Celery's prefork children would otherwise inherit the
        # parent's open SQLite connections, which SQLite forbids using across a fork.
        "poolclass": NullPool,
    }


class Channel(sqlalchemy.Channel):
    """kombu's channel, with one cheap read before its own.

    kombu's read of a message takes SQLite's write lock (BEGIN IMMEDIATE) and opens a fresh
    connection (no pool, see above) on every poll, 20 times a second per idle worker: that was
    about a tenth of a core for a console doing nothing, and a lock that producers queued
    behind. A plain read on a connection kept by this process says first whether the queue
    has a visible message at all; only then does kombu's locked read run.
    """

    _peek: tuple[int, sqlite3.Connection] | None = None

    def _get(self, queue: str, timeout: Any = None) -> Any:
        if not self._has_visible_message(queue):
            raise Empty()
        return super()._get(queue)

    def _has_visible_message(self, queue: str) -> bool:
        pid = os.getpid()  # a connection is never used across a fork
        if self._peek is None or self._peek[0] != pid:
            path = self.connection.client.hostname.removeprefix("sqlite:///")
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            self._peek = (pid, conn)
        messages, queues = self.message_tablename, self.queue_tablename
        try:
            row = (
                self._peek[1]
                .execute(
                    f"SELECT 1 FROM {messages} JOIN {queues} ON {messages}.queue_id = {queues}.id "
                    f"WHERE {queues}.name = ? AND {messages}.visible = 1 LIMIT 1",
                    (queue,),
                )
                .fetchone()
            )
        except sqlite3.OperationalError:  # no tables yet, or busy: kombu's own read decides
            return True
        return row is not None

    def close(self) -> None:
        if self._peek is not None and self._peek[0] == os.getpid():
            self._peek[1].close()
        self._peek = None
        super().close()


class Transport(sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, looking for new messages every 0.05 s when idle instead
    of every second (its transport options all go to create_engine, so this cannot be an
    option), and never waiting long for one.

    Celery's worker loop for polling transports acknowledges finished tasks (acks_late) only
    between two waits for a message, and waits up to 2 s. With its prefetch full (two tasks
    unacknowledged) no message can come, so each wait ran out: about one task a second got
    through, however short the tasks.
    """

    Channel = Channel
    polling_interval = POLLING_SECONDS

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        cap = MAX_WAIT_SECONDS if timeout is None else min(timeout, MAX_WAIT_SECONDS)
        return super().drain_events(connection, timeout=cap)
