"""The SQLite order book and its activities: idempotent, closed-loop."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.order_book import OrderBook
from activities.orders import OrderActivities, OrderBatch, OrderRequest, OverdueRequest, ResultRequest
from pathway.contract import Action


def request(action_id: str, kind: str = "order_radiograph", day: float = 14.0) -> OrderRequest:
    return OrderRequest(workflow_id="vcf-pathway-pt-ob", patient_id="pt-ob",
                        action=Action(id=action_id, kind=kind, day=day, rationale="r", citation="c"),
                        title="X-ray spine", resource="ServiceRequest")


def test_placing_the_same_action_twice_orders_once(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    first = env.run(activities.place_order, request("order_radiograph:day-14"))
    again = env.run(activities.place_order, request("order_radiograph:day-14"))
    other = env.run(activities.place_order, request("order_radiograph:day-42", day=42))
    assert first.created and not again.created and other.created
    assert first.order_id == again.order_id != other.order_id
    assert len(order_book.list(patient_id="pt-ob")) == 2


def test_the_order_book_survives_a_reopen(tmp_path):
    OrderBook(tmp_path / "o.db").place(
        idempotency_key="wf/a", patient_id="p", workflow_id="wf", action_id="a", kind="order_dxa",
        resource="ServiceRequest", priority="routine", day=0, title="t", rationale="r", citation="c",
        details={"x": 1}, codes=[{"system": "s", "code": "77080", "display": "d"}])
    rows = OrderBook(tmp_path / "o.db").list()
    assert [(r.action_id, r.details, r.codes[0].code) for r in rows] == [("a", {"x": 1}, "77080")]
    # The key is enforced by the database itself.
    with sqlite3.connect(tmp_path / "o.db") as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO orders SELECT 'other-id', idempotency_key, patient_id, workflow_id, action_id,"
                   " kind, resource, status, priority, day, title, rationale, citation, details, codes,"
                   " created_at, updated_at, status_reason FROM orders")


def test_a_result_fulfils_the_oldest_open_order_once(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    env.run(activities.place_order, request("order_radiograph:day-14"))
    env.run(activities.place_order, request("order_radiograph:day-42", day=42))
    result = ResultRequest(workflow_id="vcf-pathway-pt-ob", event_type="radiograph", day=44, result_key="event-7")
    first = env.run(activities.record_result, result)
    retried = env.run(activities.record_result, result)  # an activity retry fulfils nothing more
    assert first == retried
    status = {o.action_id: o.status for o in order_book.list()}
    assert status == {"order_radiograph:day-14": "completed", "order_radiograph:day-42": "active"}


def test_invalid_orders_fail_without_retry(order_book: OrderBook):
    bad = request("order_radiograph:day-14")
    bad.action.id = ""
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(OrderActivities(order_book).place_order, bad)
    assert err.value.non_retryable and "action" in str(err.value)


def test_order_ids_are_random_but_a_retry_answers_the_same_order(order_book: OrderBook):
    env, activities = ActivityEnvironment(), OrderActivities(order_book)
    first = env.run(activities.place_order, request("order_mri:day-0"))
    retried = env.run(activities.place_order, request("order_mri:day-0"))
    assert first.order_id == retried.order_id and not retried.created
    # Not derived from the idempotency key: another book places the same action under another id.
    other = OrderBook(order_book.path.with_name("other.db"))
    assert env.run(OrderActivities(other).place_order, request("order_mri:day-0")).order_id != first.order_id
    old_scheme = "ord-" + hashlib.sha256(b"vcf-pathway-pt-ob/order_mri:day-0").hexdigest()[:20]
    assert first.order_id != old_scheme and re.fullmatch(r"ord-[0-9a-f]{20}", first.order_id)


def test_an_overdue_task_points_at_its_order_found_by_key(order_book: OrderBook):
    env, activities = ActivityEnvironment(), OrderActivities(order_book)
    placed = env.run(activities.place_order, request("order_mri:day-0", kind="order_mri", day=0))
    overdue = OverdueRequest(workflow_id="vcf-pathway-pt-ob", patient_id="pt-ob", order_action_id="order_mri:day-0",
                             order_kind="order_mri", order_day=0, day=14, rationale="r", citation="c")
    task = env.run(activities.escalate_overdue_result, overdue)
    assert order_book.get(task.order_id).details["order_id"] == placed.order_id
    assert env.run(activities.escalate_overdue_result, overdue).order_id == task.order_id  # once


def test_orders_in_an_existing_database_keep_their_ids(tmp_path):
    path = tmp_path / "orders.db"
    legacy = "ord-" + hashlib.sha256(b"wf/a").hexdigest()[:20]  # how ids were made before they were random
    OrderBook(path)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO orders (id, idempotency_key, patient_id, workflow_id, action_id, kind, resource,"
                   " status, priority, day, title, rationale, citation, details, codes, created_at, updated_at) VALUES"
                   " (?, 'wf/a', 'p', 'wf', 'a', 'order_dxa', 'ServiceRequest', 'active', 'routine', 0, 't', 'r', 'c',"
                   " '{}', '[]', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')", (legacy,))
    order, created = OrderBook(path).place(
        idempotency_key="wf/a", patient_id="p", workflow_id="wf", action_id="a", kind="order_dxa",
        resource="ServiceRequest", priority="routine", day=0, title="t", rationale="r", citation="c",
        details={}, codes=[])
    assert (order.id, created) == (legacy, False)
    assert OrderBook(path).get(legacy) is not None and OrderBook(path).get_by_key("wf/a").id == legacy


def test_a_batch_retried_after_a_partial_failure_writes_only_what_is_missing(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    env.run(activities.place_order, request("order_radiograph:day-14"))  # written before the failure
    batch = OrderBatch(workflow_id="vcf-pathway-pt-ob",
                       orders=[request("order_radiograph:day-14"), request("order_radiograph:day-42", day=42)])
    first = env.run(activities.place_orders, batch)
    retried = env.run(activities.place_orders, batch)  # an activity retry, or a replay
    assert first == retried and set(first.placed) == {"order_radiograph:day-14", "order_radiograph:day-42"}
    assert len(order_book.list(patient_id="pt-ob")) == 2


def test_a_batch_refuses_an_invalid_order_alone_and_keeps_the_step_order(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    env.run(activities.place_order, request("order_mri:day-0", kind="order_mri", day=0))
    result = ResultRequest(workflow_id="vcf-pathway-pt-ob", event_type="mri", day=3, result_key="event-1")
    batch = OrderBatch(workflow_id="vcf-pathway-pt-ob", result=result,
                       orders=[request("", kind="order_dxa"), request("order_radiograph:day-14")])
    receipt = env.run(activities.place_orders, batch)
    assert list(receipt.placed) == ["order_radiograph:day-14"]
    assert "missing id" in receipt.refused["order_dxa"]
    status = {o.action_id: o.status for o in order_book.list()}
    assert status == {"order_mri:day-0": "completed", "order_radiograph:day-14": "active"}
