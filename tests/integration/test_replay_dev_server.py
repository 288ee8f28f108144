"""Replay of a history from the real dev server: today's workflow code must replay it."""

from __future__ import annotations

import pytest

from tests.helpers import enrollment, make_worker, replayer
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_fresh_dev_server_history_replays(dev_env, order_book, task_queue):
    """With search attributes and UI metadata on, as in production."""
    async with make_worker(dev_env, order_book, task_queue):
        handle = await start_pathway(dev_env.client, enrollment("pt-replay-dev"), task_queue=task_queue)
        await handle.signal(PatientPathwayWorkflow.neuro, {"deficit": True})
        await handle.execute_update(PatientPathwayWorkflow.submit_event,
                                    {"type": "clinician", "decision": "pause", "reason": "r", "author": "a"})
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "infection"})
        assert (await handle.result()).status == "exited"
        history = await handle.fetch_history()
    await replayer().replay_workflow(history)
