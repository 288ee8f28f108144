"""Replay: today's workflow code must replay the histories of pathways already running."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.helpers import make_worker
from tests.histories.record import record_story
from tests.test_patient_pathway import enrollment
from worker.runtime import sandbox_runner
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    return Replayer(workflows=[PatientPathwayWorkflow], data_converter=pydantic_data_converter,
                    workflow_runner=sandbox_runner())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"vcf-pathway-{path.stem}", path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_saved_histories_exist():
    assert HISTORIES, "no saved history: run python -m tests.histories.record"


async def test_fresh_time_skipping_history_replays(ts_env):
    history = WorkflowHistory.from_json("fresh", await record_story(ts_env, "pt-replay-fresh"))
    assert len(history.events) > 100
    await replayer().replay_workflow(history)


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
