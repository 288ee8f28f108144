"""The pathway on the real dev server: search attributes, UI metadata, continue-as-new."""

from __future__ import annotations

import pytest

from tests.helpers import DEV_SUGGEST_CONTINUE_AS_NEW, enrollment, eventually, make_worker
from workflows import search_attributes as sa
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_search_attributes_and_named_timers(dev_env, order_book, task_queue, definition):
    async with make_worker(dev_env, order_book, task_queue):
        handle = await start_pathway(dev_env.client, enrollment("pt-dev-01", fracture_level="T12"),
                                     task_queue=task_queue)
        await handle.signal(PatientPathwayWorkflow.clinician,
                            {"type": "clinician", "decision": "pause", "reason": "admitted", "author": "dr-d"})

        async def listed():
            query = f'WorkflowId = "{handle.id}" AND PathwayPhase = "paused" AND FractureLevel = "T12"'
            return [w async for w in dev_env.client.list_workflows(query)]

        found = await eventually(listed)
        assert len(found) == 1
        attrs = found[0].typed_search_attributes
        assert attrs.get(sa.GUIDELINE_VERSION) == definition.version
        assert attrs.get(sa.ESCALATION_STATE) == "none"
        assert attrs.get(sa.NEXT_REVIEW_AT) is not None
        assert "pt-dev-01" not in str(attrs.get(sa.PATHWAY_PHASE))  # no patient data in attributes
        description = await handle.describe()
        assert "T12" in (await description.static_summary() or "")
        history = await handle.fetch_history()
        timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
        # Timer summaries are user metadata: stored encrypted, read through the client's codec.
        # One alarm at a time, named for the earliest due step (the day-7 opioid review here).
        stored = [e.user_metadata.summary for e in timers]
        assert len(stored) == 1 and b"opioid review" not in stored[0].data
        names = await dev_env.client.data_converter.decode(stored, [str])
        assert names == ["opioid review"]
        await handle.terminate("test done")


async def test_history_stays_bounded_with_continue_as_new(dev_env, order_book, task_queue):
    """Far more events than one run may hold: the pathway continues as new, state intact."""
    async with make_worker(dev_env, order_book, task_queue):
        handle = await start_pathway(dev_env.client, enrollment("pt-dev-02"), task_queue=task_queue)
        first_run = (await handle.describe()).run_id
        for i in range(60):
            await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 6, "event_id": f"p-{i}"})
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 6, "event_id": "p-0"})  # a duplicate

        async def all_applied():
            state = await handle.query(PatientPathwayWorkflow.state)
            timeline = await handle.query(PatientPathwayWorkflow.timeline)
            pains = [t for t in timeline if t.entry == "event" and t.data.get("type") == "pain"]
            return state if len(pains) == 60 else None

        state = await eventually(all_applied, timeout=60)
        assert state is not None, "not every event was applied"
        description = await handle.describe()
        assert description.run_id != first_run  # it did continue as new
        assert state.history_length < DEV_SUGGEST_CONTINUE_AS_NEW * 2
        assert len([a for a in state.actions if a.kind == "start_calcitonin"]) == 1
        assert len(order_book.list(workflow_id=handle.id)) == len(state.actions)
        await handle.terminate("test done")
