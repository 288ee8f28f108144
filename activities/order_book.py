"""The order book: every order, referral and task the pathways place, in a real database (SQLite, or PostgreSQL:
:mod:`activities.database`).

Each row is keyed by an idempotency key (workflow id + action id): placing the same action
again — an activity retry, a workflow replay, a duplicate event — returns the row already there,
with the id it was given. An order's id is random (:func:`new_order_id`), so that knowing a
patient's id and the guideline tells nothing about the ids of its orders; rows written before
ids were random keep the ids they have.
Orders are closed-loop: ``active`` until fulfilled by a result, acknowledged, or cancelled
(the :class:`~activities.order_model.Order` model and its statuses); a result, once in, is
acknowledged in turn (request, result, acknowledgement), and a result still fulfils an order
acknowledged before it came.

Every order also has a fulfilment Task (:mod:`activities.task_model`). Each change of an order —
placed, its status or its task's status moved — is one row of ``order_changes``, written in the
same transaction as the change: the task's history (its ``version`` is the Task's ETag), and the
outbox that subscription deliveries read in ``seq`` order (:mod:`activities.subscriptions`).
"""

from __future__ import annotations

import builtins
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from activities.database import Database, Session, Step, Store, dialects, utc_now
from activities.order_model import OPEN, Order, OrderStatus, RequestResource
from activities.task_model import ORDER_STATUS_AFTER, TASK_STATUS_OF_ORDER, TaskStatus, illegal_transition
from pathway.results import SAME_DAY_MARGIN

PATHWAY = "pathway"  # who changed an order when the order book did it (a result, a cancellation)
# An order placed in the same instant as the result counts as placed by it, as the decisions match them.
PLACED_BY_MARGIN = SAME_DAY_MARGIN
URGENT = "urgent"  # the priority an order is expedited to (FHIR request-priority)

MIGRATIONS: list[list[Step]] = [
    [  # 1: the order book as first released (a SQLite file from then already has it: IF NOT EXISTS)
        """CREATE TABLE IF NOT EXISTS orders (
            id               TEXT PRIMARY KEY,
            idempotency_key  TEXT NOT NULL UNIQUE,
            patient_id       TEXT NOT NULL,
            workflow_id      TEXT NOT NULL,
            action_id        TEXT NOT NULL,
            kind             TEXT NOT NULL,
            resource         TEXT NOT NULL,
            status           TEXT NOT NULL,
            priority         TEXT NOT NULL,
            day              DOUBLE PRECISION NOT NULL,
            title            TEXT NOT NULL,
            rationale        TEXT NOT NULL,
            citation         TEXT NOT NULL,
            details          TEXT NOT NULL,
            codes            TEXT NOT NULL,
            created_at       TEXT NOT NULL,
            updated_at       TEXT NOT NULL,
            status_reason    TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS orders_patient ON orders (patient_id, status)",
        "CREATE INDEX IF NOT EXISTS orders_workflow_kind ON orders (workflow_id, kind, status)",
        # Pages in listing order (day, created_at, id), whole or by patient or status: see OrderBook.page.
        "CREATE INDEX IF NOT EXISTS orders_listing ON orders (day, created_at, id)",
        "CREATE INDEX IF NOT EXISTS orders_patient_listing ON orders (patient_id, day, created_at, id)",
        "CREATE INDEX IF NOT EXISTS orders_status_listing ON orders (status, day, created_at, id)",
    ],
    [  # 2: every change of an order (its fulfilment task's history, and the subscriptions' outbox)
        dialects(sqlite="""CREATE TABLE IF NOT EXISTS order_changes (
            seq INTEGER PRIMARY KEY, order_id TEXT NOT NULL, patient_id TEXT NOT NULL, version INTEGER NOT NULL,
            task_status TEXT NOT NULL, order_status TEXT NOT NULL, business_status TEXT, changed_at TEXT NOT NULL,
            changed_by TEXT NOT NULL, note TEXT, UNIQUE (order_id, version))""",
                 postgresql="""CREATE TABLE IF NOT EXISTS order_changes (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id TEXT NOT NULL, patient_id TEXT NOT NULL,
            version INTEGER NOT NULL, task_status TEXT NOT NULL, order_status TEXT NOT NULL, business_status TEXT,
            changed_at TEXT NOT NULL, changed_by TEXT NOT NULL, note TEXT, UNIQUE (order_id, version))"""),
        "CREATE INDEX IF NOT EXISTS order_changes_patient ON order_changes (patient_id, seq)",
    ],
]
"""The order book's schema, one list of steps per version: add new versions at the end."""

# Where a page ends, in listing order: (day, created_at, id) of its last order.
PagePosition = tuple[float, str, str]


# An order a care team acknowledged before its result came: its task was never completed (a result
# completes it), so it still waits for the result.
_ACKNOWLEDGED_WITHOUT_RESULT = ("(status = 'acknowledged' AND NOT EXISTS (SELECT 1 FROM order_changes c"
                                " WHERE c.order_id = orders.id AND c.task_status = 'completed'))")


# An order whose performer completed its task (the exam is done) with no result recorded yet: the report is
# still to come, and fulfils it (a result is recorded by the pathway, the order book's own actor).
# Its history kept from its placing on (orders from before order_changes existed have none to go by).
_COMPLETED_BY = ("SELECT 1 FROM order_changes c WHERE c.order_id = orders.id AND c.task_status = 'completed'"
                 " AND c.changed_by {} '" + PATHWAY + "'")
_PLACED = ("SELECT 1 FROM order_changes c WHERE c.order_id = orders.id AND c.changed_by = '" + PATHWAY + "'"
           " AND c.note = 'placed'")
_PERFORMED_WITHOUT_RESULT = (f"(status IN ('completed', 'acknowledged') AND EXISTS ({_PLACED})"
                             f" AND EXISTS ({_COMPLETED_BY.format('<>')})"
                             f" AND NOT EXISTS ({_COMPLETED_BY.format('=')}))")
# Still waiting for its result: open, acknowledged before it came, or performed and not yet reported.
_AWAITING_RESULT = f"(status = '{OPEN}' OR {_ACKNOWLEDGED_WITHOUT_RESULT} OR {_PERFORMED_WITHOUT_RESULT})"

# Every column of an order, and whether it was acknowledged before its result (Order.acknowledged_before_result).
_ORDER = f"SELECT *, {_ACKNOWLEDGED_WITHOUT_RESULT} AS acknowledged_before_result FROM orders"


def order_key(workflow_id: str, action_id: str) -> str:
    """The idempotency key of a pathway's order, task or referral: one per workflow and action id, so a
    retry or a replay finds the order it placed (:meth:`OrderBook.place`)."""
    return f"{workflow_id}/{action_id}"


def new_order_id() -> str:
    """A fresh, unguessable order id (80 random bits; no PHI in it). The idempotency key, not the
    id, says whether an order exists already: see :meth:`OrderBook.place`."""
    return "ord-" + secrets.token_hex(10)


class OrderBook(Store):
    """The order book on a database (a SQLite file path, a ``postgresql://`` URL or a
    :class:`~activities.database.Database`); safe to share between threads and processes."""

    name = "orders"
    migrations = MIGRATIONS

    def __init__(self, target: str | Path | Database):
        super().__init__(target)
        # SQLite takes one writer at a time anyway: queue them here rather than in its busy timeout
        # (re-entrant: the writes of a transaction, :meth:`transaction`, take it again).
        sqlite = self.database.dialect == "sqlite"
        self._lock: AbstractContextManager[Any] = threading.RLock() if sqlite else nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several writes as one (a decision step's orders): one commit, all of them or none.
        Other writers wait for it; readers see the book as it was until it commits."""
        with self._lock, self.database.transaction():
            yield

    def place(self, *, idempotency_key: str, patient_id: str, workflow_id: str, action_id: str,
              kind: str, resource: RequestResource, priority: str, day: float, title: str, rationale: str,
              citation: str, details: dict[str, Any], codes: list[dict[str, Any]]) -> tuple[Order, bool]:
        """Insert the order unless its key exists; return the order and whether it is new (an
        order already there keeps its id: a retry or replay answers the same order)."""
        order_id = new_order_id()
        now = utc_now()
        with self._lock, self.database.transaction() as db:
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
            row = db.execute(_ORDER + " WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            if created:
                _change(db, row["id"], row["patient_id"], "requested", OPEN, PATHWAY, "placed")
        return _row(row), created

    def set_status(self, order_id: str, status: OrderStatus, reason: str, *, only_open: bool = True,
                   by: str = PATHWAY) -> bool:
        """Move one order to ``status`` (its task to the matching status, :data:`TASK_STATUS_OF_ORDER`);
        False if it is unknown or (with only_open) already closed. ``by`` names who did it."""
        with self._lock, self.database.transaction() as db:
            cur = db.execute(
                "UPDATE orders SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?"
                + (" AND status = ?" if only_open else ""),
                (status, reason, utc_now(), order_id, *((OPEN,) if only_open else ())),
            )
            if cur.rowcount != 1:
                return False
            row = db.execute("SELECT patient_id FROM orders WHERE id = ?", (order_id,)).fetchone()
            _change(db, order_id, row["patient_id"], TASK_STATUS_OF_ORDER[status], status, by, reason)
            return True

    def expedite(self, workflow_id: str, action_id: str, reason: str) -> bool:
        """Make one pathway's open order urgent (its task gains a version saying why); False if it is
        not open or already urgent — so a retry or replay changes nothing."""
        with self._lock, self.database.transaction() as db:
            row = db.execute("SELECT id, patient_id FROM orders WHERE workflow_id = ? AND action_id = ?"
                             " AND status = ? AND priority <> ?", (workflow_id, action_id, OPEN, URGENT)).fetchone()
            if row is None:
                return False
            db.execute("UPDATE orders SET priority = ?, updated_at = ? WHERE id = ?", (URGENT, utc_now(), row["id"]))
            task = _task(db, row["id"])
            assert task is not None
            _change(db, row["id"], row["patient_id"], task.status, OPEN, PATHWAY, reason, task.business_status)
            return True

    def acknowledge_result(self, order_id: str, note: str, *, by: str) -> bool:
        """Close the loop of an order its result completed: it becomes ``acknowledged`` (its task stays
        completed and gains a version with ``note``). False unless the order is completed."""
        with self._lock, self.database.transaction() as db:
            row = db.execute("SELECT patient_id, status_reason FROM orders WHERE id = ? AND status = ?",
                             (order_id, "completed")).fetchone()
            if row is None:
                return False
            reason = f"{row['status_reason']}; {note}" if row["status_reason"] else note
            db.execute("UPDATE orders SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                       ("acknowledged", reason, utc_now(), order_id))
            task = _task(db, order_id)
            assert task is not None
            _change(db, order_id, row["patient_id"], task.status, "acknowledged", by, note, task.business_status)
            return True

    def close_open(self, workflow_id: str, kinds: builtins.list[str], status: OrderStatus, reason: str,
                   *, oldest_first: bool = False, limit: int | None = None,
                   awaiting_result: bool = False, placed_by: float | None = None,
                   action_id: str | None = None) -> builtins.list[str]:
        """Close the open orders of some kinds for one pathway (at most ``limit``); return their ids.
        ``awaiting_result``: an order a care team acknowledged before its result came counts as open
        (a result still fulfils it), as does one whose task its performer completed before the report
        came. ``placed_by``: only orders placed by that pathway day (a result answers an order placed
        by the day it was observed); newest first, ties by action id as the decisions order them
        (:mod:`pathway.results`). ``action_id``: that order only.

        Each update closes its order only if it is still as read: a concurrent writer (another
        worker, on PostgreSQL) that closed it first makes this one take the next, never the same.
        """
        marks = ",".join("?" * len(kinds))
        waiting = f" OR {_AWAITING_RESULT}" if awaiting_result else ""
        by = (" AND day <= ?" if placed_by is not None else "") \
            + (" AND action_id = ?" if action_id is not None else "")
        # Matched to the decisions' order (day, then action id) where a result is matched by its day.
        order = ("day ASC, action_id" if oldest_first else "day DESC, action_id DESC") if placed_by is not None \
            else ("day ASC, created_at" if oldest_first else "day DESC, created_at")
        query = (f"SELECT id, patient_id, status, status_reason FROM orders WHERE workflow_id = ?"
                 f" AND (status = ?{waiting})"
                 f" AND kind IN ({marks}){by} ORDER BY {order}")
        args = (workflow_id, OPEN, *kinds, *([placed_by + PLACED_BY_MARGIN] if placed_by is not None else []),
                *([action_id] if action_id is not None else []))
        closed: builtins.list[str] = []
        with self._lock, self.database.transaction() as db:
            for row in db.execute(query, args).fetchall():
                if limit and len(closed) >= limit:
                    break
                # As read: status and reason (a performed order stays 'completed' when a result completes it).
                cur = db.execute("UPDATE orders SET status = ?, status_reason = ?, updated_at = ?"
                                 " WHERE id = ? AND status = ? AND COALESCE(status_reason, '') = ?",
                                 (status, reason, utc_now(), row["id"], row["status"], row["status_reason"] or ""))
                if cur.rowcount == 1:
                    closed.append(row["id"])
                    _change(db, row["id"], row["patient_id"], TASK_STATUS_OF_ORDER[status], status, PATHWAY, reason)
        return closed

    def awaits_result(self, order_id: str) -> bool:
        """Whether the order is still waiting for its result: open, acknowledged before it came, or performed
        and not yet reported (a result, a cancellation or the performer's refusal closes it)."""
        with self.database.read() as db:
            row = db.execute(f"SELECT 1 FROM orders WHERE id = ? AND {_AWAITING_RESULT}", (order_id,)).fetchone()
        return row is not None

    def get(self, order_id: str) -> Order | None:
        """One order by id."""
        with self.database.read() as db:
            row = db.execute(_ORDER + " WHERE id = ?", (order_id,)).fetchone()
        return _row(row) if row else None

    def get_by_key(self, idempotency_key: str) -> Order | None:
        """One order by its idempotency key (workflow id + action id)."""
        with self.database.read() as db:
            row = db.execute(_ORDER + " WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return _row(row) if row else None

    def page(self, *, patient_id: str | None = None, status: OrderStatus | None = None,
             after: PagePosition | None = None, skip: int = 0, limit: int = 100) -> list[Order]:
        """At most ``limit`` orders in listing order (day, created_at, id), after the position
        ``after`` (keyset paging: an index seek, however deep the page), then ``skip`` more."""
        where, args = _filters(patient_id=patient_id, status=status)
        if after is not None:
            where += (" AND " if where else " WHERE ") + "(day, created_at, id) > (?, ?, ?)"
            args.extend(after)
        query = _ORDER + where + " ORDER BY day, created_at, id LIMIT ? OFFSET ?"
        with self.database.read() as db:
            rows = db.execute(query, [*args, limit, skip]).fetchall()
        return [_row(r) for r in rows]

    def count(self, *, patient_id: str | None = None, status: OrderStatus | None = None) -> int:
        """How many orders match (counted in the database, none loaded)."""
        where, args = _filters(patient_id=patient_id, status=status)
        with self.database.read() as db:
            return db.execute("SELECT count(*) AS n FROM orders" + where, args).fetchone()["n"]

    def list(self, *, patient_id: str | None = None, status: OrderStatus | None = None,
             workflow_id: str | None = None) -> list[Order]:
        """Orders, oldest first, filtered by patient, pathway and status (all of them: for one
        pathway's orders; a listing across patients goes page by page, :meth:`page`)."""
        where, args = _filters(patient_id=patient_id, status=status, workflow_id=workflow_id)
        with self.database.read() as db:
            rows = db.execute(_ORDER + where + " ORDER BY day, created_at, id", args).fetchall()
        return [_row(r) for r in rows]


    # --- The fulfilment Task and the changes of orders ------------------------------------------

    def task(self, order_id: str) -> TaskState | None:
        """The order's task as it is now (None for an unknown order)."""
        with self.database.read() as db:
            return _task(db, order_id)

    def task_history(self, order_id: str) -> builtins.list[OrderChange]:
        """Every change of the order's task, oldest first."""
        with self.database.read() as db:
            rows = db.execute("SELECT * FROM order_changes WHERE order_id = ? ORDER BY version", (order_id,)).fetchall()
        return [OrderChange(**dict(r)) for r in rows]

    def move_task(self, order_id: str, status: TaskStatus, *, if_version: int | None, by: str,
                  note: str | None = None, business_status: str | None = None) -> TaskMove:
        """Move the order's task to ``status`` if the move is legal and (given ``if_version``) the task
        is still at that version; the order follows (:data:`ORDER_STATUS_AFTER`). One transaction:
        either the task, its history and the order all change, or nothing does."""
        with self._lock, self.database.transaction() as db:
            before = _task(db, order_id, for_update=True)
            if before is None:
                return TaskMove("unknown")
            if if_version is not None and if_version != before.version:
                return TaskMove("stale", before)
            why = illegal_transition(before.status, status)
            if why:
                return TaskMove("illegal", before, why)
            if status == before.status and business_status == before.business_status:
                return TaskMove("unchanged", before)
            order_status = ORDER_STATUS_AFTER[status] or before.order_status
            if order_status != before.order_status:
                db.execute("UPDATE orders SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                           (order_status, note or f"task {status}", utc_now(), order_id))
            _change(db, order_id, before.patient_id, status, order_status, by, note, business_status)
            return TaskMove("moved", _task(db, order_id))

    def completions(self, workflow_id: str) -> dict[str, tuple[str, datetime]]:
        """The note of the change that completed each of a pathway's orders by a result (the status reason
        as first written: an acknowledgement appends to the order's reason, never to this note), and when it
        was written, by order id."""
        with self.database.read() as db:
            rows = db.execute("SELECT c.order_id, c.note, c.changed_at FROM order_changes c JOIN orders o"
                              " ON o.id = c.order_id WHERE o.workflow_id = ? AND c.order_status = ?"
                              " AND c.changed_by = ? ORDER BY c.seq", (workflow_id, "completed", PATHWAY)).fetchall()
        return {row["order_id"]: (row["note"], datetime.fromisoformat(row["changed_at"]))
                for row in rows if row["note"]}

    def changes_after(self, seq: int, *, patient_id: str | None = None,
                      limit: int = 100) -> builtins.list[OrderChange]:
        """Changes of orders after ``seq`` (of one patient, if given), in the order they happened."""
        where, args = ("seq > ? AND patient_id = ?", [seq, patient_id]) if patient_id else ("seq > ?", [seq])
        with self.database.read() as db:
            rows = db.execute(f"SELECT * FROM order_changes WHERE {where} ORDER BY seq LIMIT ?",
                              [*args, limit]).fetchall()
        return [OrderChange(**dict(r)) for r in rows]


@dataclass(frozen=True)
class OrderChange:
    """One change of an order: its task's new status and version, who made it and why."""

    seq: int
    order_id: str
    patient_id: str
    version: int
    task_status: str
    order_status: str
    changed_at: str
    changed_by: str
    business_status: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class TaskState:
    """An order's task now: its status, version (the ETag) and when it last changed."""

    order_id: str
    patient_id: str
    status: TaskStatus
    order_status: OrderStatus
    version: int
    last_modified: str
    business_status: str | None = None


@dataclass(frozen=True)
class TaskMove:
    """What :meth:`OrderBook.move_task` did: ``moved``, ``unchanged``, ``stale``, ``illegal`` (with
    the reason) or ``unknown``; ``task`` is the task after (or as it stood, when refused)."""

    outcome: Literal["moved", "unchanged", "stale", "illegal", "unknown"]
    task: TaskState | None = None
    reason: str | None = None


def _task(db: Session, order_id: str, *, for_update: bool = False) -> TaskState | None:
    # FOR UPDATE (PostgreSQL): a concurrent move of the same task waits for this transaction, so an
    # If-Match version checked here is still the version when the move is written (SQLite: BEGIN IMMEDIATE).
    lock = " FOR UPDATE" if for_update and db.dialect == "postgresql" else ""
    order = db.execute("SELECT patient_id, status, updated_at FROM orders WHERE id = ?" + lock, (order_id,)).fetchone()
    if order is None:
        return None
    last = db.execute("SELECT * FROM order_changes WHERE order_id = ? ORDER BY version DESC LIMIT 1",
                      (order_id,)).fetchone()
    if last is None:  # an order placed before tasks were kept: its task follows its status
        return TaskState(order_id, order["patient_id"], TASK_STATUS_OF_ORDER[order["status"]], order["status"], 0,
                         order["updated_at"])
    return TaskState(order_id, order["patient_id"], last["task_status"], order["status"], last["version"],
                     last["changed_at"], last["business_status"])


def _change(db: Session, order_id: str, patient_id: str, task_status: TaskStatus,
            order_status: OrderStatus, by: str, note: str | None, business_status: str | None = None) -> None:
    """Append one change of an order (its next version), inside the caller's transaction."""
    # PostgreSQL: one writer of changes at a time, so seq numbers commit in order and a delivery
    # reading "after seq N" never passes over a change still being committed below N.
    db.lock_table("order_changes")
    version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 AS n FROM order_changes WHERE order_id = ?",
                         (order_id,)).fetchone()["n"]
    db.execute("INSERT INTO order_changes (order_id, patient_id, version, task_status, order_status,"
               " business_status, changed_at, changed_by, note) VALUES (?,?,?,?,?,?,?,?,?)",
               (order_id, patient_id, version, task_status, order_status, business_status,
                datetime.now(UTC).isoformat(timespec="milliseconds"), by, note))


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


def _row(row: dict[str, Any]) -> Order:
    data = dict(row)
    data["details"] = json.loads(data["details"])
    data["codes"] = json.loads(data["codes"])
    return Order.model_validate(data)
