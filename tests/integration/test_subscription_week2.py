"""The week-2 radiograph order reaches a subscriber through the pathway's own timer: the pathway
and the subscription's delivery on the time-skipping server, a real receiver on loopback."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from activities.subscriptions import SubscriptionStore, verify
from tests.helpers import NO_SERVER_FEATURES, advance, enrollment, eventually, make_worker
from tests.integration.hook_receiver import Receiver
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway
from workflows.subscription_delivery import DeliveryInput, SubscriptionDeliveryWorkflow, subscription_workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")
SECRET = "week-two-secret-" + uuid.uuid4().hex


async def test_the_week2_radiograph_order_follows_the_enrollment_orders_after_the_receiver_was_down(
        ts_env, order_book, task_queue):
    receiver = Receiver()
    patient_id = f"pt-{uuid.uuid4().hex[:12]}"
    store = SubscriptionStore(order_book.database)
    sub = store.create(criteria=f"Task?patient={patient_id}", endpoint=receiver.url, headers=[], secret=SECRET)
    async with make_worker(ts_env, order_book, task_queue):
        delivery = await ts_env.client.start_workflow(
            SubscriptionDeliveryWorkflow.run,
            DeliveryInput(subscription_id=sub.id, after_seq=sub.delivered_seq, poll_seconds=0.3,
                          search_attributes=False),
            id=subscription_workflow_id(sub.id), task_queue=task_queue)
        receiver.down()  # down while the enrollment orders are placed: they wait, retried
        handle = await start_pathway(ts_env.client, enrollment(patient_id), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await asyncio.sleep(3)
        assert receiver.received == []
        receiver.up()

        def delivered() -> list[str]:
            return [d.order_id for _, d in sorted(receiver.by_event_number().items())]

        async def enrollment_delivered():
            state = await handle.query(PatientPathwayWorkflow.state)
            orders = [c.order_id for c in order_book.changes_after(0, patient_id=patient_id)]
            return orders if state.actions and len(orders) == len(state.actions) == len(delivered()) else None
        enrollment_orders = await eventually(enrollment_delivered, timeout=60)
        assert "order_radiograph:day-14" not in {o.action_id for o in order_book.list(patient_id=patient_id)}
        # The test server skips time only while no activity runs, and the delivery long-polls: it is
        # held (off) over the two weeks, then re-activated, as the API's PUT does.
        await delivery.signal(SubscriptionDeliveryWorkflow.set_status, "off")
        await eventually(lambda: asyncio.sleep(0, store.get(sub.id).status == "off"))  # type: ignore[union-attr]
        await advance(ts_env, handle, 15)
        await delivery.signal(SubscriptionDeliveryWorkflow.set_status, "active")
        radiograph = await eventually(lambda: asyncio.sleep(0, [
            o.id for o in order_book.list(patient_id=patient_id) if o.action_id == "order_radiograph:day-14"]))
        # Two weeks bring more changes than the film alone: every one of them arrives, in order.
        expected = [c.order_id for c in order_book.changes_after(0, patient_id=patient_id)]
        await eventually(lambda: asyncio.sleep(0, len(delivered()) >= len(expected)), timeout=60)
        await asyncio.sleep(1)  # nothing more, nothing twice
        numbers = [d.event_number for d in receiver.received]
        assert len(numbers) == len(set(numbers)) == len(expected)
        assert delivered() == expected
        assert delivered()[:len(enrollment_orders)] == enrollment_orders and radiograph[0] in delivered()
        assert all(verify(SECRET, d.body, d.signature) for d in receiver.received)
        await handle.terminate("test done")
        await delivery.terminate("test done")
    receiver.down()
