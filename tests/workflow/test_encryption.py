"""A pathway with encrypted payloads: it runs as before, and its history holds no enrollment field
nor clinician text in clear (the saved histories' replay with the codec: test_replay.py)."""

from __future__ import annotations

import pytest
from temporalio.api.history.v1 import History

from tests.helpers import NO_SERVER_FEATURES, advance, enrollment, make_worker, payloads_in
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAUSE_REASON = "admitted to ward 7 after a fall at home"
RESUME_REASON = "discharged to her daughter's care"
SIDE_EFFECT = "dizziness when standing up"


async def test_an_encrypted_pathway_runs_and_its_history_is_ciphertext(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-enc-01", fracture_level="T12", height_loss_pct=37),
                                     task_queue=task_queue, options=NO_SERVER_FEATURES)
        await handle.execute_update(PatientPathwayWorkflow.submit_event, {
            "type": "clinician", "decision": "pause", "reason": PAUSE_REASON, "author": "dr-enc"})
        await handle.signal(PatientPathwayWorkflow.clinician, {"type": "clinician", "decision": "resume",
                                                               "reason": RESUME_REASON, "author": "dr-enc"})
        await handle.signal(PatientPathwayWorkflow.side_effect, {"drug": "calcitonin", "effect": SIDE_EFFECT})
        await advance(ts_env, handle, 20)
        state = await handle.query(PatientPathwayWorkflow.state)
        timeline = await handle.query(PatientPathwayWorkflow.timeline)
        history = await handle.fetch_history()
        await handle.terminate("test done")

    # Through the codec, everything reads as before.
    assert state.fracture_level == "T12" and state.status == "running" and state.actions
    assert {PAUSE_REASON, RESUME_REASON} <= {t.data.get("reason") for t in timeline}

    stored = History(events=history.events).SerializeToString()
    clear = [b'"fracture_level"', b'"height_loss_pct":37', b'"T12"', PAUSE_REASON.encode(), RESUME_REASON.encode(),
             SIDE_EFFECT.encode()]
    assert [c for c in clear if c in stored] == []
    # ... and the texts are in the history, under the encryption.
    decoded = b"".join(p.SerializeToString() for p in await ts_env.client.data_converter.payload_codec.decode(
        [p for e in history.events for p in payloads_in(e)]))
    assert [c for c in clear if c not in decoded] == []
