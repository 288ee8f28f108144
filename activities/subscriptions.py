"""Rest-hook subscriptions: who wants which order changes pushed, and the signature they check.

A subscription names a criteria (``Task``, ``ServiceRequest``, ``MedicationRequest`` or
``CommunicationRequest``, optionally ``?patient={id}``), an http(s) endpoint, headers to send
and a shared secret. Its row also holds how far its delivery has got (the last ``order_changes``
seq delivered and the last event number), so that a delivery resumes from where it stopped.

Each notification is signed: ``X-VCF-Signature: t={unix seconds},v1={hex HMAC-SHA256 of
"{t}." + body, keyed by the secret}``, so a receiver can tell it came from here, unaltered and
recent (:func:`verify`). Stored in the order book's database (portable SQL: TEXT and INTEGER,
``?`` parameters).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from activities.database import Step, Store, utc_now
from activities.order_model import REQUEST_RESOURCES

MIGRATIONS: list[list[Step]] = [
    [  # 1
        """CREATE TABLE IF NOT EXISTS subscriptions (
            id              TEXT PRIMARY KEY,
            criteria        TEXT NOT NULL,
            resource        TEXT NOT NULL,
            patient_id      TEXT,
            endpoint        TEXT NOT NULL,
            headers         TEXT NOT NULL,
            secret          TEXT NOT NULL,
            status          TEXT NOT NULL,
            error           TEXT,
            delivered_seq   INTEGER NOT NULL,
            event_count     INTEGER NOT NULL,
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        )""",
    ],
    [  # 2: the subscriber's own reason (FHIR Subscription.reason), kept as sent
        "ALTER TABLE subscriptions ADD COLUMN reason TEXT",
    ],
]
"""The subscriptions' schema, one list of steps per version: add new versions at the end."""
SubscriptionStatus = Literal["requested", "active", "error", "off"]
SIGNATURE_HEADER = "X-VCF-Signature"
EVENT_HEADER = "X-VCF-Event-Number"
SUBSCRIPTION_HEADER = "X-VCF-Subscription"
CRITERIA_TYPES = tuple(dict.fromkeys(("Task", *REQUEST_RESOURCES)))
# What a criteria may say (the OpenAPI schema uses the same pattern): a type, and a patient if any.
CRITERIA = rf"^({'|'.join(CRITERIA_TYPES)})(?:\?patient=(?:Patient/)?([A-Za-z0-9._-]{{1,64}}))?$"
# A header sent with every notification, and those the delivery sets itself (never taken from a subscriber).
CHANNEL_HEADER = r"^[A-Za-z0-9-]{1,64}:[ -~]{1,512}$"
RESERVED_HEADERS = ("host", "content-type", "content-length", "x-vcf-signature", "x-vcf-event-number",
                    "x-vcf-subscription")
SECRET_EXTENSION = "http://example.org/fhir/vcf-pathway/StructureDefinition/subscription-secret"
SECRET_LENGTH = (16, 256)
# An endpoint: http(s), a host name or IPv4 address, a port, a path; no user or password.
ENDPOINT = r"^https?://([A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?([/?][!-~]*)?$"


@dataclass(frozen=True)
class Subscription:
    """One subscription as stored (the secret included: only the delivery reads it)."""

    id: str
    criteria: str
    resource: str
    patient_id: str | None
    endpoint: str
    headers: list[str]
    secret: str
    status: SubscriptionStatus
    error: str | None
    delivered_seq: int
    event_count: int
    created_at: str
    updated_at: str
    reason: str | None = None  # as the subscriber gave it (None: a subscription from before it was kept)

    def matches(self, resource: str, patient_id: str) -> bool:
        """Whether a change of an order (its request resource type, its patient) is for this
        subscription: ``Task`` criteria match every order (each has a fulfilment Task)."""
        return (self.resource in ("Task", resource)) and self.patient_id in (None, patient_id)


def parse_criteria(criteria: str) -> tuple[str, str | None]:
    """``Type`` or ``Type?patient=id`` (:data:`CRITERIA`) -> (type, patient id or None);
    ValueError saying why not."""
    found = re.fullmatch(CRITERIA, criteria)
    if not found:
        raise ValueError(f"criteria: expected one of {', '.join(CRITERIA_TYPES)}, optionally ?patient={{id}}")
    return found.group(1), found.group(2)


def new_subscription_id() -> str:
    """A fresh, unguessable subscription id (no PHI)."""
    return "sub-" + secrets.token_hex(10)


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The ``X-VCF-Signature`` value of ``body`` sent at unix time ``at`` (now by default)."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: float = 300) -> bool:
    """Whether ``header`` is this body's signature with this secret, made within ``tolerance``
    seconds of ``now`` (a receiver's check; compares in constant time)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    t = int(parts["t"])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=")[1]
    return hmac.compare_digest(expected, parts["v1"])


class SubscriptionStore(Store):
    """Subscriptions and how far each delivery has got (beside the order book's tables: open the
    order book first, the changes it delivers are there)."""

    name = "subscriptions"
    migrations = MIGRATIONS

    def create(self, *, criteria: str, endpoint: str, headers: list[str], secret: str,
               reason: str | None = None) -> Subscription:
        """Store a new subscription, ``requested`` until its delivery starts; it delivers changes
        from the time it is created on."""
        resource, patient_id = parse_criteria(criteria)
        sub_id, now = new_subscription_id(), utc_now()
        with self.database.transaction() as db:
            start = db.execute("SELECT COALESCE(MAX(seq), 0) AS seq FROM order_changes").fetchone()["seq"]
            db.execute("INSERT INTO subscriptions (id, criteria, resource, patient_id, endpoint, headers, secret,"
                       " status, error, delivered_seq, event_count, created_at, updated_at, reason)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (sub_id, criteria, resource, patient_id, endpoint, json.dumps(headers), secret, "requested",
                        None, start, 0, now, now, reason))
        found = self.get(sub_id)
        assert found is not None
        return found

    def get(self, sub_id: str) -> Subscription | None:
        """One subscription by id."""
        with self.database.read() as db:
            row = db.execute("SELECT * FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
        return _subscription(row) if row else None

    def all(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        with self.database.read() as db:
            rows = db.execute("SELECT * FROM subscriptions ORDER BY created_at, id").fetchall()
        return [_subscription(r) for r in rows]

    def set_status(self, sub_id: str, status: SubscriptionStatus, error: str | None = None) -> None:
        """Record the subscription's status (and, for ``error``, why)."""
        with self.database.transaction() as db:
            db.execute("UPDATE subscriptions SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                       (status, error, utc_now(), sub_id))

    def delivered(self, sub_id: str, seq: int, event_number: int) -> None:
        """Record that the change ``seq`` went out as notification ``event_number``."""
        with self.database.transaction() as db:
            db.execute("UPDATE subscriptions SET delivered_seq = ?, event_count = ?, updated_at = ?"
                       " WHERE id = ? AND event_count < ?", (seq, event_number, utc_now(), sub_id, event_number))


def _subscription(row: dict[str, Any]) -> Subscription:
    data = dict(row)
    data["headers"] = json.loads(data["headers"])
    return Subscription(**data)
