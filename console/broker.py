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


def embedded_broker_options(url: str) -> dict[str, Any]:
    """Prepare the broker's SQLite file named by `url` (sqla+sqlite:///PATH) and return the
    transport options (passed by kombu to SQLAlchemy's create_engine)."""
    path = Path(url.removeprefix(EMBEDDED_PREFIX))
    path.parent.mkdir(parents=True, exist_ok=True)
    # WAL is a property of the file: set once, every later connection uses it.
    with sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    return {
        "connect_args": {"timeout": BUSY_TIMEOUT_SECONDS},
        # No pooled connections: Celery's prefork children would otherwise inherit the
        # parent's open SQLite connections, which SQLite forbids using across a fork.
        "poolclass": NullPool,
    }


class Transport(sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, looking for new messages every 0.05 s when idle instead
    of every second. (Its transport options all go to create_engine, so this cannot be an
    option.) A worker whose prefetch is full also waits this long before it takes the next."""

    polling_interval = POLLING_SECONDS
