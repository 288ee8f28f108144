"""The API's own small registry, in the order-book database file: enrollments and event ids.

It answers without a Temporal worker: is this patient enrolled (404 otherwise), was this
enrollment body seen before (idempotent 200, or 409 for different data), was this event id
already accepted (200, applied once) or used for a different event (409). The workflow dedupes
event ids too; this table lets the API say so at once and keeps a duplicate off the wire.

Both tables are claimed before the workflow is touched (the primary key arbitrates between
concurrent requests) and the claim is released if starting or signalling fails.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from activities.database import Session, Step, Store


def _add_event_columns(db: Session) -> None:
    """A registry from before event payloads were compared (payload_hash), or their senders recorded."""
    columns = db.columns("api_events")
    for column in ("payload_hash", "submitted_by"):
        if column not in columns:
            db.execute(f"ALTER TABLE api_events ADD COLUMN {column} TEXT")


MIGRATIONS: list[list[Step]] = [
    [  # 1: enrollments and event ids (a SQLite file from before already has them: IF NOT EXISTS)
        """CREATE TABLE IF NOT EXISTS api_enrollments (
            patient_id   TEXT PRIMARY KEY,
            workflow_id  TEXT NOT NULL,
            body         TEXT NOT NULL,
            started_at   TEXT,
            created_at   TEXT NOT NULL
        )""",
        # Ids are case-sensitive, but two that differ only by case are never both enrolled.
        "CREATE INDEX IF NOT EXISTS api_enrollments_folded ON api_enrollments (lower(patient_id))",
        """CREATE TABLE IF NOT EXISTS api_events (
            patient_id   TEXT NOT NULL,
            event_id     TEXT NOT NULL,
            event_type   TEXT NOT NULL,
            received_at  TEXT NOT NULL,
            PRIMARY KEY (patient_id, event_id)
        )""",
    ],
    [_add_event_columns],  # 2: who sent each event, and a digest of it
]
"""The registry's schema, one list of steps per version: add new versions at the end."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def canonical(body: dict[str, Any]) -> str:
    """A stable text form of a validated body, so equal data compares equal."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def payload_hash(body: dict[str, Any]) -> str:
    """A digest of an event's canonical form: the same event_id must carry the same event."""
    return hashlib.sha256(canonical(body).encode()).hexdigest()


class IdCaseClash(ValueError):
    """Another patient is enrolled under this id written with other letter case."""


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


class Registry(Store):
    """Enrollments and accepted event ids, in the order book's database (safe across threads and
    processes)."""

    name = "registry"
    migrations = MIGRATIONS

    def claim(self, patient_id: str, workflow_id: str, body: str) -> EnrollmentRecord:
        """Register an enrollment unless the id is taken; return the record now held.

        The primary key makes this the arbiter between concurrent enrollments of one id; one
        write transaction, between those of ids that differ only by case (:class:`IdCaseClash`:
        ``pt-A`` and ``pt-a`` would be two patients to the workflow service, one to a person).
        """
        with self.database.transaction() as db:
            db.lock_table("api_enrollments")
            clash = db.execute("SELECT 1 FROM api_enrollments WHERE lower(patient_id) = lower(?)"
                               " AND patient_id != ?", (patient_id, patient_id)).fetchone()
            if clash:
                raise IdCaseClash(patient_id)
            db.execute("INSERT INTO api_enrollments (patient_id, workflow_id, body, created_at)"
                       " VALUES (?,?,?,?) ON CONFLICT(patient_id) DO NOTHING",
                       (patient_id, workflow_id, body, _now()))
            row = db.execute("SELECT * FROM api_enrollments WHERE patient_id = ?", (patient_id,)).fetchone()
        return _record(row)

    def release(self, patient_id: str) -> None:
        """Forget an enrollment whose workflow was never started (its start failed)."""
        with self.database.transaction() as db:
            db.execute("DELETE FROM api_enrollments WHERE patient_id = ? AND started_at IS NULL", (patient_id,))

    def mark_started(self, patient_id: str, workflow_id: str, body: str) -> None:
        """Note that the patient's workflow exists on the server (re-registering it if a
        concurrent failed attempt released the claim meanwhile)."""
        now = _now()
        with self.database.transaction() as db:
            db.execute("INSERT INTO api_enrollments (patient_id, workflow_id, body, started_at, created_at)"
                       " VALUES (?,?,?,?,?) ON CONFLICT(patient_id) DO UPDATE"
                       " SET started_at = COALESCE(api_enrollments.started_at, excluded.started_at)",
                       (patient_id, workflow_id, body, now, now))

    def get(self, patient_id: str) -> EnrollmentRecord | None:
        """One enrollment, or None."""
        with self.database.read() as db:
            row = db.execute("SELECT * FROM api_enrollments WHERE patient_id = ?", (patient_id,)).fetchone()
        return _record(row) if row else None

    def claim_event(self, patient_id: str, event_id: str, event_type: str, digest: str,
                    submitted_by: str | None = None) -> str:
        """Claim an event id: ``"new"`` (ours to send), ``"same"`` (already taken by this very
        event) or ``"different"`` (taken by another event). Atomic across requests.
        ``submitted_by`` names the credential that sent it."""
        with self.database.transaction() as db:
            cur = db.execute("INSERT INTO api_events (patient_id, event_id, event_type, received_at, payload_hash,"
                             " submitted_by) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                             (patient_id, event_id, event_type, _now(), digest, submitted_by))
            if cur.rowcount == 1:
                return "new"
            row = db.execute("SELECT payload_hash FROM api_events WHERE patient_id = ? AND event_id = ?",
                             (patient_id, event_id)).fetchone()
        if row is None:  # released by a failed concurrent attempt in between: claim it again
            return self.claim_event(patient_id, event_id, event_type, digest, submitted_by)
        # A row from before payloads were hashed cannot be compared: take it as the same event.
        return "same" if row["payload_hash"] in (None, digest) else "different"

    def submitted_by(self, patient_id: str, event_id: str) -> str | None:
        """The credential name that sent an accepted event (None if unknown)."""
        with self.database.read() as db:
            row = db.execute("SELECT submitted_by FROM api_events WHERE patient_id = ? AND event_id = ?",
                             (patient_id, event_id)).fetchone()
        return row["submitted_by"] if row else None

    def release_event(self, patient_id: str, event_id: str) -> None:
        """Give an event id back after the signal failed, so a retry is sent, not deduped."""
        with self.database.transaction() as db:
            db.execute("DELETE FROM api_events WHERE patient_id = ? AND event_id = ?", (patient_id, event_id))


def _record(row: dict[str, Any]) -> EnrollmentRecord:
    started = row["started_at"]
    return EnrollmentRecord(patient_id=row["patient_id"], workflow_id=row["workflow_id"], body=row["body"],
                            started_at=datetime.fromisoformat(started) if started else None,
                            created_at=datetime.fromisoformat(row["created_at"]))
