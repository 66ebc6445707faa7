"""The embedded broker's cheap read: an idle poll neither opens a connection for kombu's locked
read nor takes SQLite's write lock, and a message is still found and taken exactly once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kombu import Connection

from console.broker import EMBEDDED_PREFIX, Transport, embedded_broker_options


def test_an_idle_poll_reads_without_the_write_lock_and_messages_still_arrive(
    tmp_path: Path,
) -> None:
    url = f"{EMBEDDED_PREFIX}{tmp_path / 'broker.sqlite3'}"
    options = embedded_broker_options(url)
    with Connection(
        url.removeprefix("sqla+"), transport=Transport, transport_options=options
    ) as conn:
        queue = conn.SimpleQueue("work")
        channel = queue.channel
        assert not channel._has_visible_message("work")

        # Another connection holds the write lock: an idle poll still answers at once.
        locker = sqlite3.connect(tmp_path / "broker.sqlite3", timeout=0, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        assert not channel._has_visible_message("work")
        locker.execute("ROLLBACK")

        queue.put({"n": 1})
        assert channel._has_visible_message("work")
        message = queue.get(timeout=2)
        assert message.payload == {"n": 1}
        message.ack()
        assert not channel._has_visible_message("work")  # taken: not visible any more
        queue.close()
