"""The SQLite order book and its activities: idempotent, closed-loop."""

from __future__ import annotations

import sqlite3

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.order_book import OrderBook
from activities.orders import OrderActivities, OrderRequest, ResultRequest
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
