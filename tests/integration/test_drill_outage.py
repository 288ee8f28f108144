"""The drill's outage on a PostgreSQL order book: while the tables are locked an order write gives
up (an outage, not a bug: 503 at the API, a retry in the worker); once they are let go it goes in."""

from __future__ import annotations

import threading

import pytest

from activities.database import BUSY_TIMEOUT, is_unavailable
from activities.order_book import OrderBook
from drill.chaos import outage_for


def place(book: OrderBook, key: str) -> None:
    book.place(idempotency_key=key, patient_id="pt-drill", workflow_id="wf", action_id=key, kind="order_dxa",
               resource="ServiceRequest", priority="routine", day=0, title="t", rationale="r", citation="c",
               details={}, codes=[])


def test_a_locked_postgresql_order_book_refuses_writes_until_it_is_let_go(postgres, tmp_path):
    url = postgres.new_database()
    book = OrderBook(url)
    outage = outage_for(url, tmp_path / "unused.db")
    held = threading.Thread(target=outage.hold, args=(BUSY_TIMEOUT + 3,))
    held.start()
    try:
        assert outage.held.wait(10), "the lock was not taken"
        with pytest.raises(Exception) as refused:  # whichever psycopg raises, it must read as an outage
            place(book, "during")
        assert is_unavailable(refused.value), repr(refused.value)
    finally:
        held.join()
    place(book, "after")
    assert [o.action_id for o in book.list(patient_id="pt-drill")] == ["after"]
    book.database.close()
