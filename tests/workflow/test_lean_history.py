"""A lean history: one alarm at a time, one activity per decision step, the guideline by reference."""

from __future__ import annotations

from collections import Counter

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from pathway.releases import GuidelineRef
from tests.helpers import NO_SERVER_FEATURES, advance, enrollment, make_worker
from workflows.models import PathwayInput, workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")
RESULTS = {3: ("mri", {"etiology": "osteoporotic"}), 10: ("dxa", {"t_score": -2.7}),
           15: ("radiograph", {"height_loss_pct": 26}), 43: ("radiograph", {"height_loss_pct": 27})}


async def test_an_unknown_guideline_digest_fails_the_start_loudly(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await ts_env.client.start_workflow(
            PatientPathwayWorkflow.run,
            PathwayInput(enrollment=enrollment("pt-lean-00"), options=NO_SERVER_FEATURES,
                         guideline=GuidelineRef(version="vcf-1.2", digest="ab" * 32)),
            id=workflow_id_for("pt-lean-00"), task_queue=task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UnknownGuideline"
    assert "guideline.digest: no released definition has digest abababababab" in cause.message
    assert order_book.list() == []  # nothing was decided under another version


async def test_one_alarm_at_a_time_and_one_activity_per_step(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-lean-01"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        schedule = sorted({**{d: ("pain", {"nrs": max(1, 8 - d // 20)}) for d in range(7, 120, 7)}, **RESULTS}.items())
        for day, (signal, payload) in schedule:
            await advance(ts_env, handle, day)
            await handle.signal(signal, payload)
        await advance(ts_env, handle, 120)
        state = await handle.query(PatientPathwayWorkflow.state)
        history = await handle.fetch_history()
        await handle.terminate("checked")
    outstanding, most, counts = 0, 0, Counter[str]()
    for event in history.events:
        name = EventType.Name(event.event_type)
        counts[name] += 1
        outstanding += {"EVENT_TYPE_TIMER_STARTED": 1, "EVENT_TYPE_TIMER_FIRED": -1,
                        "EVENT_TYPE_TIMER_CANCELED": -1}.get(name, 0)
        most = max(most, outstanding)
    assert most == 1, "more than one alarm outstanding"
    assert counts["EVENT_TYPE_TIMER_STARTED"] <= 2 * len(schedule), counts
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert set(scheduled) == {"place_orders"} and len(scheduled) < len(state.actions) + len(RESULTS), scheduled
    escalations = [n for n in state.notes if n.id.startswith("overdue:")]
    assert len(state.orders) == len(state.actions)
    assert len(order_book.list()) == len(state.actions) + len(escalations)
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert len(started.data) < 2000  # the guideline travels by reference
