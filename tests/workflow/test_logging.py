"""Logs: one JSON object per line, with the workflow id and action kind, and no clinical free text."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.helpers import NO_SERVER_FEATURES, advance, enrollment, make_worker
from worker.logging import configure_logging
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_workflow_and_activity_logs_are_json_with_ids_and_no_free_text(ts_env, order_book, task_queue):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO")
    stream = io.StringIO()
    root.handlers[0].stream = stream
    try:
        async with make_worker(ts_env, order_book, task_queue):
            handle = await start_pathway(ts_env.client, enrollment("pt-log-01"), task_queue=task_queue,
                                         options=NO_SERVER_FEATURES)
            await handle.signal(PatientPathwayWorkflow.side_effect,
                                {"drug": "calcitonin", "effect": "Dizzy-Zebra-Marker"})
            await handle.signal(PatientPathwayWorkflow.clinician,
                                {"decision": "pause", "reason": "Reason-Marker", "author": "Dr Author-Marker"})
            await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 99})
            await handle.signal(PatientPathwayWorkflow.event, {"type": "Type-Marker MRN 884412", "nrs": 4})
            await advance(ts_env, handle, 1)
            await handle.terminate("test done")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    ours = [line for line in lines if line.get("workflow_id") == handle.id]
    assert len(ours) >= 10
    actions = [line for line in ours if line["event"] in ("action taken", "order placed")]
    assert actions and all(line.get("action_kind") for line in actions)
    assert any(line["event"] == "event rejected" and line.get("level") == "warning" for line in ours)
    assert any(line["event"] == "event rejected" and line.get("event_type") == "unknown" for line in ours)
    for marker in ("Dizzy-Zebra-Marker", "Reason-Marker", "Author-Marker", "Type-Marker"):
        assert marker not in text
