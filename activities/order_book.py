"""The order book: every order, referral and task the pathways place, in a real SQLite database.

Each row is keyed by an idempotency key (workflow id + action id): placing the same action
again — an activity retry, a workflow replay, a duplicate event — returns the row already there,
with the id it was given. An order's id is random (:func:`new_order_id`), so that knowing a
patient's id and the guideline tells nothing about the ids of its orders; rows written before
ids were random keep the ids they have.
Orders are closed-loop: ``active`` until fulfilled by a result, acknowledged, or cancelled
(the :class:`~activities.order_model.Order` model and its statuses).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from activities.order_model import OPEN, Order, OrderStatus, RequestResource
from activities.sqlite_store import SqliteStore, utc_now

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id               TEXT PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    patient_id       TEXT NOT NULL,
    workflow_id      TEXT NOT NULL,
    action_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    resource         TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         TEXT NOT NULL,
    day              REAL NOT NULL,
    title            TEXT NOT NULL,
    rationale        TEXT NOT NULL,
    citation         TEXT NOT NULL,
    details          TEXT NOT NULL,
    codes            TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    status_reason    TEXT
);
CREATE INDEX IF NOT EXISTS orders_patient ON orders (patient_id, status);
CREATE INDEX IF NOT EXISTS orders_workflow_kind ON orders (workflow_id, kind, status);
-- Pages in listing order (day, created_at, id), whole or by patient or status: see OrderBook.page.
CREATE INDEX IF NOT EXISTS orders_listing ON orders (day, created_at, id);
CREATE INDEX IF NOT EXISTS orders_patient_listing ON orders (patient_id, day, created_at, id);
CREATE INDEX IF NOT EXISTS orders_status_listing ON orders (status, day, created_at, id);
"""

# Where a page ends, in listing order: (day, created_at, id) of its last order.
PagePosition = tuple[float, str, str]


def new_order_id() -> str:
    """A fresh, unguessable order id (80 random bits; no PHI in it). The idempotency key, not the
    id, says whether an order exists already: see :meth:`OrderBook.place`."""
    return "ord-" + secrets.token_hex(10)


class OrderBook(SqliteStore):
    """SQLite-backed order book; safe to share between threads of one process."""

    schema = SCHEMA

    def __init__(self, path: str | Path):
        self._lock = threading.RLock()  # re-entered by the writes of a transaction
        super().__init__(path)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several writes as one (a decision step's orders): one commit, all of them or none.
        Other writers wait for it; readers see the book as it was until it commits."""
        with self._lock, self._transaction():
            yield

    def place(self, *, idempotency_key: str, patient_id: str, workflow_id: str, action_id: str,
              kind: str, resource: RequestResource, priority: str, day: float, title: str, rationale: str,
              citation: str, details: dict[str, Any], codes: list[dict[str, Any]]) -> tuple[Order, bool]:
        """Insert the order unless its key exists; return the order and whether it is new (an
        order already there keeps its id: a retry or replay answers the same order)."""
        order_id = new_order_id()
        now = utc_now()
        with self._lock, self._connect() as db:
            cur = db.execute(
                "INSERT INTO orders (id, idempotency_key, patient_id, workflow_id, action_id, kind,"
                " resource, status, priority, day, title, rationale, citation, details, codes,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(idempotency_key) DO NOTHING",
                (order_id, idempotency_key, patient_id, workflow_id, action_id, kind, resource, OPEN,
                 priority, day, title, rationale, citation, json.dumps(details, sort_keys=True),
                 json.dumps(codes), now, now),
            )
            created = cur.rowcount == 1
            row = db.execute("SELECT * FROM orders WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return _row(row), created

    def set_status(self, order_id: str, status: OrderStatus, reason: str, *, only_open: bool = True) -> bool:
        """Move one order to ``status``; False if it is unknown or (with only_open) already closed."""
        with self._lock, self._connect() as db:
            cur = db.execute(
                "UPDATE orders SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?"
                + (" AND status = ?" if only_open else ""),
                (status, reason, utc_now(), order_id, *((OPEN,) if only_open else ())),
            )
            return cur.rowcount == 1

    def close_open(self, workflow_id: str, kinds: list[str], status: OrderStatus, reason: str,
                   *, oldest_first: bool = False, limit: int | None = None) -> list[str]:
        """Close the open orders of some kinds for one pathway; return their ids."""
        marks = ",".join("?" * len(kinds))
        query = (f"SELECT id FROM orders WHERE workflow_id = ? AND status = ? AND kind IN ({marks})"
                 f" ORDER BY day {'ASC' if oldest_first else 'DESC'}, created_at")
        if limit:
            query += f" LIMIT {int(limit)}"
        with self._lock, self._connect() as db:
            ids = [r["id"] for r in db.execute(query, (workflow_id, OPEN, *kinds)).fetchall()]
            for order_id in ids:
                db.execute("UPDATE orders SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                           (status, reason, utc_now(), order_id))
        return ids

    def get(self, order_id: str) -> Order | None:
        """One order by id."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return _row(row) if row else None

    def get_by_key(self, idempotency_key: str) -> Order | None:
        """One order by its idempotency key (workflow id + action id)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM orders WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return _row(row) if row else None

    def page(self, *, patient_id: str | None = None, status: OrderStatus | None = None,
             after: PagePosition | None = None, skip: int = 0, limit: int = 100) -> list[Order]:
        """At most ``limit`` orders in listing order (day, created_at, id), after the position
        ``after`` (keyset paging: an index seek, however deep the page), then ``skip`` more."""
        where, args = _filters(patient_id=patient_id, status=status)
        if after is not None:
            where += (" AND " if where else " WHERE ") + "(day, created_at, id) > (?, ?, ?)"
            args.extend(after)
        query = "SELECT * FROM orders" + where + " ORDER BY day, created_at, id LIMIT ? OFFSET ?"
        with self._connect() as db:
            rows = db.execute(query, [*args, limit, skip]).fetchall()
        return [_row(r) for r in rows]

    def count(self, *, patient_id: str | None = None, status: OrderStatus | None = None) -> int:
        """How many orders match (counted in the database, none loaded)."""
        where, args = _filters(patient_id=patient_id, status=status)
        with self._connect() as db:
            return db.execute("SELECT count(*) FROM orders" + where, args).fetchone()[0]

    def list(self, *, patient_id: str | None = None, status: OrderStatus | None = None,
             workflow_id: str | None = None) -> list[Order]:
        """Orders, oldest first, filtered by patient, pathway and status (all of them: for one
        pathway's orders; a listing across patients goes page by page, :meth:`page`)."""
        where, args = _filters(patient_id=patient_id, status=status, workflow_id=workflow_id)
        with self._connect() as db:
            rows = db.execute("SELECT * FROM orders" + where + " ORDER BY day, created_at, id", args).fetchall()
        return [_row(r) for r in rows]


def position(order: Order) -> PagePosition:
    """Where ``order`` stands in listing order (the next page starts after it)."""
    return order.day, _stored_time(order), order.id


def _stored_time(order: Order) -> str:
    # created_at as the database holds it (utc_now's text), which is what it sorts by.
    return order.created_at.isoformat(timespec="seconds")


def _filters(**columns: Any) -> tuple[str, list[Any]]:
    where, args = [], []
    for column, value in columns.items():
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), args


def _row(row: sqlite3.Row) -> Order:
    data = dict(row)
    data["details"] = json.loads(data["details"])
    data["codes"] = json.loads(data["codes"])
    return Order.model_validate(data)
