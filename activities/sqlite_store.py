"""A SQLite file with its schema: the order book and the API's registry both stand on it.

The file is created with mode 0600 (and so are its ``-wal`` and ``-shm`` files): it holds
patient data.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteStore:
    """Opens a connection per operation (safe across threads and processes); WAL so that
    readers never block the writer; the schema is created on first open."""

    schema = ""

    def __init__(self, path: str | Path):
        self._held = threading.local()  # this thread's connection while it runs a transaction
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
    def _transaction(self) -> Iterator[None]:
        """The operations inside run on one connection in one transaction: one commit (one disk
        flush, one checkpoint) instead of one per operation; all of them, or none."""
        if getattr(self._held, "db", None) is not None:
            yield  # nested: the outer transaction commits
            return
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            self._held.db = db
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
            finally:
                self._held.db = None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        held = getattr(self._held, "db", None)
        if held is not None:
            yield held
            return
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()
