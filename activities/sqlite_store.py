"""A SQLite file with its schema: the order book and the API's registry both stand on it.

The file is created with mode 0600 (and so are its ``-wal`` and ``-shm`` files): it holds
patient data.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

# Seconds to wait for another writer's lock. Below an order activity's start-to-close timeout
# (10 s): a write that cannot get the lock fails in the worker (logged, retried with backoff)
# instead of being abandoned by the server mid-wait, unseen, with a thread still blocked on it.
# The API answers 503 after the same wait.
BUSY_TIMEOUT = 5.0


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteStore:
    """Opens a connection per operation (safe across threads and processes); WAL so that
    readers never block the writer; the schema is created on first open."""

    schema = ""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created readable by its owner only; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(self.schema)

    def ping(self) -> None:
        """Raise unless the database file can be opened and read."""
        with self._connect() as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()
