"""The order book taken away while orders are due (another process holds SQLite's write lock):
the order activities fail visibly in the worker's log and are retried, and every order is there,
once, when the book is back. Found by the drill: an order write waited on the lock as long as the
activity's whole start-to-close timeout, so the server abandoned the attempt mid-wait and the
worker logged nothing — the outage did not show, and each abandoned wait held an activity thread."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid

import pytest

from activities.database import BUSY_TIMEOUT
from activities.order_book import OrderBook
from tests.helpers import enrollment, eventually, make_worker
from workflows.activity_calls import ORDER_TIMEOUT
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

HELD = 8.0  # seconds: longer than an order write waits for the lock, shorter than the activity's timeout


def test_an_order_write_gives_up_on_the_lock_before_its_activity_times_out():
    assert BUSY_TIMEOUT < HELD < ORDER_TIMEOUT.total_seconds()


@pytest.mark.asyncio(loop_scope="session")
async def test_orders_due_while_the_book_is_locked_fail_in_the_log_then_are_placed_once(dev_env, tmp_path, caplog):
    book = OrderBook(tmp_path / "orders.db")
    task_queue = f"outage-{uuid.uuid4()}"
    caplog.set_level(logging.WARNING, logger="temporalio.activity")
    async with make_worker(dev_env, book, task_queue):  # its stores open (and migrate) before the lock
        holder = sqlite3.connect(book.path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        handle = await start_pathway(dev_env.client, enrollment(f"pt-out-{uuid.uuid4().hex[:8]}"),
                                     task_queue=task_queue)
        await asyncio.sleep(HELD)
        holder.execute("ROLLBACK")
        holder.close()

        async def booked():
            actions = await handle.query(PatientPathwayWorkflow.actions)
            orders = book.list(workflow_id=handle.id)
            return (actions, orders) if actions and len(orders) == len(actions) else None

        actions, orders = await eventually(booked, timeout=60)
        await handle.terminate("test done")
    failed = [r for r in caplog.records if r.getMessage().startswith("Completing activity as failed")]
    assert failed, "the outage did not show in the worker's log"
    assert any("database is locked" in str(r.exc_info[1]) for r in failed if r.exc_info)
    assert sorted(o.action_id for o in orders) == sorted(a.id for a in actions)  # each once, none lost
