"""The audit trail: who read or changed which patient's record, through which route, when, and
with what outcome. Append-only, in the order book's database.

A row holds the caller's name (a key's name, ``token`` for the static tokens), the patient id,
the route template (never the concrete path), read or write, the status code and, for an
event, its id: no bodies and no clinical values. The code only inserts and selects; triggers
refuse an UPDATE or DELETE (on PostgreSQL, a TRUNCATE too) from anyone else who opens the
database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from activities.database import Step, Store, dialects

_COLUMNS = """
    recorded_at  TEXT NOT NULL,
    credential   TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    method       TEXT NOT NULL,
    route        TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('read', 'write')),
    status       INTEGER NOT NULL,
    event_id     TEXT
"""

MIGRATIONS: list[list[Step]] = [
    [  # 1: the trail and its guard (a SQLite file from before already has them: IF NOT EXISTS)
        dialects(sqlite="CREATE TABLE IF NOT EXISTS api_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                        + _COLUMNS + ")",
                 postgresql="CREATE TABLE IF NOT EXISTS api_audit (seq BIGINT GENERATED ALWAYS AS IDENTITY"
                            " PRIMARY KEY," + _COLUMNS + ")"),
        "CREATE INDEX IF NOT EXISTS api_audit_patient ON api_audit (patient_id, seq)",
        dialects(sqlite="CREATE TRIGGER IF NOT EXISTS api_audit_no_update BEFORE UPDATE ON api_audit"
                        " BEGIN SELECT RAISE(ABORT, 'api_audit is append-only'); END",
                 postgresql="CREATE OR REPLACE FUNCTION api_audit_append_only() RETURNS trigger LANGUAGE plpgsql"
                            " AS $$ BEGIN RAISE EXCEPTION 'api_audit is append-only'; END $$"),
        dialects(sqlite="CREATE TRIGGER IF NOT EXISTS api_audit_no_delete BEFORE DELETE ON api_audit"
                        " BEGIN SELECT RAISE(ABORT, 'api_audit is append-only'); END",
                 postgresql="CREATE TRIGGER api_audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON api_audit"
                            " FOR EACH STATEMENT EXECUTE FUNCTION api_audit_append_only()"),
    ],
]
"""The audit trail's schema, one list of steps per version: add new versions at the end."""
MAX_ROWS = 1000  # one answer's cap; the newest are kept


@dataclass(frozen=True)
class AuditRecord:
    """One request that read or changed a patient's record."""

    seq: int
    recorded_at: str
    credential: str
    patient_id: str
    method: str
    route: str
    action: str
    status: int
    event_id: str | None = None


class AuditTrail(Store):
    """Appends and reads audit records; nothing else."""

    name = "audit"
    migrations = MIGRATIONS

    def append(self, *, credential: str, patient_ids: list[str], method: str, route: str, action: str, status: int,
               event_id: str | None = None) -> None:
        """Record one request: a row for each patient it concerned, in one transaction."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.database.transaction() as db:
            for patient_id in patient_ids:
                db.execute("INSERT INTO api_audit (recorded_at, credential, patient_id, method, route, action,"
                           " status, event_id) VALUES (?,?,?,?,?,?,?,?)",
                           (at, credential, patient_id, method, route, action, status, event_id))

    def for_patient(self, patient_id: str, limit: int = MAX_ROWS) -> list[AuditRecord]:
        """The patient's records, oldest first (the newest ``limit``)."""
        with self.database.read() as db:
            rows = db.execute("SELECT * FROM (SELECT * FROM api_audit WHERE patient_id = ? ORDER BY seq DESC"
                              " LIMIT ?) AS newest ORDER BY seq", (patient_id, limit)).fetchall()
        return [AuditRecord(**dict(row)) for row in rows]


_DCM = "http://dicom.nema.org/resources/ontology/DCM"


def audit_event(record: AuditRecord) -> dict[str, Any]:
    """One record as a FHIR R4 AuditEvent."""
    # R4 audit-event-outcome: 0 success, 4 minor failure, 8 serious failure
    outcome = "0" if record.status < 400 else "4" if record.status < 500 else "8"
    details = [{"type": "route", "valueString": f"{record.method} {record.route}"},
               *([{"type": "event_id", "valueString": record.event_id}] if record.event_id else [])]
    return {
        "resourceType": "AuditEvent", "id": f"audit-{record.seq}",
        "type": {"system": _DCM, "code": "110110", "display": "Patient Record"},
        "action": "R" if record.action == "read" else "E",
        "recorded": record.recorded_at, "outcome": outcome, "outcomeDesc": f"HTTP {record.status}",
        "agent": [{"who": {"display": record.credential}, "requestor": True}],
        "source": {"observer": {"display": "vcf-api"}},
        "entity": [{"what": {"reference": f"Patient/{record.patient_id}"}, "detail": details}],
    }


def audit_bundle(records: list[AuditRecord]) -> dict[str, Any]:
    """A searchset Bundle of the records' AuditEvents."""
    return {"resourceType": "Bundle", "type": "searchset", "total": len(records),
            "entry": [{"resource": audit_event(r), "search": {"mode": "match"}} for r in records]}
