"""The embedded task broker: kombu's SQLAlchemy transport on a SQLite file under var/.

Every message is a row inserted (and taken) in one transaction, so several producers and a
worker cannot lose or half-read one. The file runs in WAL mode: writers append, readers do not
block them, and a busy writer makes others wait (`timeout`) instead of failing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
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


class Transport(sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, looking for new messages every 0.05 s when idle instead
    of every second (its transport options all go to create_engine, so this cannot be an
    option), and never waiting long for one.

    Celery's worker loop for polling transports acknowledges finished tasks (acks_late) only
    between two waits for a message, and waits up to 2 s. With its prefetch full (two tasks
    unacknowledged) no message can come, so each wait ran out: about one task a second got
    through, however short the tasks.
    """

    polling_interval = POLLING_SECONDS

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        cap = MAX_WAIT_SECONDS if timeout is None else min(timeout, MAX_WAIT_SECONDS)
        return super().drain_events(connection, timeout=cap)
