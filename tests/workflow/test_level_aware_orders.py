"""A T8 patient's orders, as the order book holds them after the real workflow placed them."""

from __future__ import annotations

import pytest

from tests.helpers import NO_SERVER_FEATURES, advance, enrollment, make_worker
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_thoracic_patients_orders_carry_thoracic_codes(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-level-t8", fracture_level="T8"),
                                     task_queue=task_queue, options=NO_SERVER_FEATURES)
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic"})
        await advance(ts_env, handle, 10)
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 8})
        await advance(ts_env, handle, 80)
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 7})
        await advance(ts_env, handle, 183)  # past the day-182 screening
        state = await handle.query(PatientPathwayWorkflow.state)
        await handle.terminate("test done")
    codes = {}
    for order in order_book.list(workflow_id=state.workflow_id):
        codes.setdefault(order.kind, [c.code for c in order.codes])
    assert codes["order_mri"] == ["72146"] and codes["order_radiograph"] == ["72070"]
    assert codes["refer_vertebral_augmentation"] == ["22513", "22510"]
    assert codes["order_adjacent_fracture_screening"] == ["72070", "72100"]  # thoracic and lumbar, at any level
    assert "offer_nerve_block" not in codes
    assert any(n.id == "offer_nerve_block:out_of_scope" for n in state.notes)
