"""The API's own small registry, in the order-book database file: enrollments and event ids.

It answers without a Temporal worker: is this patient enrolled (404 otherwise), was this
enrollment body seen before (idempotent 200, or 409 for different data), was this event id
already accepted (200, applied once). The workflow dedupes event ids too; this table lets the
API say so at once and keeps a duplicate off the wire.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from activities.sqlite_store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_enrollments (
    patient_id   TEXT PRIMARY KEY,
    workflow_id  TEXT NOT NULL,
    body         TEXT NOT NULL,
    started_at   TEXT,
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_events (
    patient_id   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (patient_id, event_id)
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def canonical(body: dict[str, Any]) -> str:
    """A stable text form of a validated body, so equal data compares equal."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class EnrollmentRecord:
    """A registered enrollment; ``started_at`` is None until its workflow has been started."""

    patient_id: str
    workflow_id: str
    body: str
    started_at: datetime | None
    created_at: datetime

    @property
    def enrollment(self) -> dict[str, Any]:
        """The enrollment as it was accepted."""
        return json.loads(self.body)


class Registry(SqliteStore):
    """Enrollments and accepted event ids, in SQLite (safe across threads and processes)."""

    schema = SCHEMA

    def claim(self, patient_id: str, workflow_id: str, body: str) -> tuple[EnrollmentRecord, bool]:
        """Register an enrollment unless the id is taken; return the record and whether it is new.

        The primary key makes this the arbiter between concurrent enrollments of one id.
        """
        with self._connect() as db:
            cur = db.execute("INSERT INTO api_enrollments (patient_id, workflow_id, body, created_at)"
                             " VALUES (?,?,?,?) ON CONFLICT(patient_id) DO NOTHING",
                             (patient_id, workflow_id, body, _now()))
            row = db.execute("SELECT * FROM api_enrollments WHERE patient_id = ?", (patient_id,)).fetchone()
        return _record(row), cur.rowcount == 1

    def mark_started(self, patient_id: str) -> None:
        """Note that the patient's workflow exists on the server."""
        with self._connect() as db:
            db.execute("UPDATE api_enrollments SET started_at = COALESCE(started_at, ?) WHERE patient_id = ?",
                       (_now(), patient_id))

    def get(self, patient_id: str) -> EnrollmentRecord | None:
        """One enrollment, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_enrollments WHERE patient_id = ?", (patient_id,)).fetchone()
        return _record(row) if row else None

    def seen(self, patient_id: str, event_id: str) -> bool:
        """Whether this event id was already accepted for this patient."""
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM api_events WHERE patient_id = ? AND event_id = ?",
                             (patient_id, event_id)).fetchone()
        return row is not None

    def remember(self, patient_id: str, event_id: str, event_type: str) -> None:
        """Record an accepted event id (after the workflow durably holds the event)."""
        with self._connect() as db:
            db.execute("INSERT INTO api_events (patient_id, event_id, event_type, received_at)"
                       " VALUES (?,?,?,?) ON CONFLICT DO NOTHING", (patient_id, event_id, event_type, _now()))


def _record(row: sqlite3.Row) -> EnrollmentRecord:
    started = row["started_at"]
    return EnrollmentRecord(patient_id=row["patient_id"], workflow_id=row["workflow_id"], body=row["body"],
                            started_at=datetime.fromisoformat(started) if started else None,
                            created_at=datetime.fromisoformat(row["created_at"]))
