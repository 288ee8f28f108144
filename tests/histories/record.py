"""Record workflow histories for the replay tests: ``python -m tests.histories.record NAME [STORY]``.

Run it before a change to the workflow's command sequence, commit the JSON, and the replay test
proves the changed code still replays the pathways already running (guard with
``workflow.patched`` until it does). Payloads are encrypted with the tests' key ring
(``tests/key-ring.json``), as the replayer expects; histories saved before encryption are plain
and replay as they are.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.order_book import OrderBook
from cli.simulate import start_test_server
from pathway.contract import Enrollment
from tests.helpers import TEST_CONVERTER, make_worker
from workflows.models import PathwayOptions
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

HERE = Path(__file__).parent
# Touches every handler: signals of each kind, an update, a rejected event, pause/resume, the timers.
STORY = [
    (0, "event", {"type": "mri", "etiology": "osteoporotic", "event_id": "r1"}),
    (3, "pain", {"nrs": 11}),
    (9, "pain", {"nrs": 8}),
    (10, "update", {"type": "clinician", "decision": "confirm_nerve_block", "reason": "NRS 8", "author": "dr-r"}),
    (15, "radiograph", {"height_loss_pct": 31, "kyphosis_deg": 12}),
    (16, "mobility", {"bed_bound": True}),
    (20, "side_effect", {"drug": "calcitonin", "effect": "mild dizziness"}),
    (30, "mobility", {"bed_bound": False}),
    (40, "clinician", {"decision": "pause", "reason": "admitted", "author": "dr-r"}),
    (45, "clinician", {"decision": "resume", "reason": "discharged", "author": "dr-r"}),
    (60, "pain", {"nrs": 6}),
    (70, "dxa", {"t_score": -2.8}),
    (80, "pulmonary", {"dysfunction": False}),
    (120, "neuro", {"deficit": False}),
]

# Decisions that revision 2 changes where a step then places no order (pathway.revision.REVISION):
# PT on an indeterminate MRI after an osteoporotic one. Recorded before that revision.
INDETERMINATE_MRI = [
    (1, "mri", {"etiology": "osteoporotic"}),
    (3, "mri", {"etiology": "indeterminate"}),
    (10, "pain", {"nrs": 3}),
]
# Decisions that revision 3 changes: a severe report in the nerve-block window that arrives after it
# closed, a result observed days before it arrives, a decline after the referral. Recorded before it.
LATE_EVIDENCE = [
    (1, "mri", {"etiology": "osteoporotic"}),
    (20, "pain", {"nrs": 5}),
    (50, "pain", {"nrs": 8, "observed_day": 30}),
    (52, "radiograph", {"height_loss_pct": 25, "observed_day": 43}),
    (80, "pain", {"nrs": 7}),
    (90, "clinician", {"decision": "decline_augmentation", "reason": "prefers conservative care", "author": "dr-r"}),
]
# A decision refused when applied, then sent again under its event id (from free-refused-event-ids on,
# judged again; before, answered as a duplicate). Recorded before that patch.
PAUSE = {"decision": "pause", "reason": "admitted", "author": "dr-r"}
REFUSED_THEN_RESENT = [
    (2, "clinician", {**PAUSE, "event_id": "c-1"}),
    (3, "clinician", {**PAUSE, "event_id": "c-2"}),  # already paused: refused
    (4, "clinician", {**PAUSE, "decision": "resume", "event_id": "c-3"}),
    (5, "clinician", {**PAUSE, "event_id": "c-2"}),
]
# A year to completion, the 12-month screening still without its result when the pathway completes
# (from watch-open-orders-after-end on, it is watched after the end). Recorded before that patch.
COMPLETED = [
    (2, "mri", {"etiology": "osteoporotic"}),
    (5, "dxa", {"t_score": -2.6}),
    *((day, "pain", {"nrs": max(1, 6 - day // 30)}) for day in range(10, 365, 12)),
    (15, "radiograph", {"height_loss_pct": 25}),
    (45, "radiograph", {"height_loss_pct": 26}),
    (86, "radiograph", {"height_loss_pct": 26}),
    (190, "radiograph", {"height_loss_pct": 26}),
]
COMPLETED.sort(key=lambda event: event[0])
# Events observed at the instant a step is scheduled for (from revision 4 they come before it: the
# review sees the MRI and the report of its day). Recorded before that revision.
SAME_INSTANT = [
    (10, "pain", {"nrs": 6}),
    (84, "mri", {"etiology": "osteoporotic"}),
    (84, "pain", {"nrs": 6}),
]
# What revision 5 changes: a pause ended at the instant of a scheduled radiograph (one order for the two
# due), days paused not counted in a follow-up gap, a criterion found after the review that waits for an
# MRI past day 182 (a note, no referral). Recorded before that revision.
REVISION_5 = [
    (2, "mri", {"etiology": "osteoporotic"}),
    (13, "clinician", PAUSE),
    (42, "clinician", {**PAUSE, "decision": "resume"}),
    (80, "pain", {"nrs": 3}),
    (90, "mri", {"etiology": "indeterminate"}),
    (100, "pulmonary", {"dysfunction": True}),
    (190, "mri", {"etiology": "osteoporotic"}),
]
# Both scheduled screenings due together after a pause (from revision 5, one order). Recorded before it.
SCREENINGS_TOGETHER = [
    (2, "mri", {"etiology": "osteoporotic"}),
    *((day, "pain", {"nrs": 3}) for day in range(10, 170, 12)),
    (170, "clinician", PAUSE),
    (370, "clinician", {**PAUSE, "decision": "resume"}),
]
# A withdrawal while the calcitonin course runs (from revision 6 nothing is stopped: the course is handed
# over with the open orders). Recorded before that revision.
WITHDRAWN_IN_COURSE = [
    (2, "mri", {"etiology": "osteoporotic"}),
    (10, "clinician", {**PAUSE, "decision": "withdraw"}),
]
# What else revision 6 changes: a week-2 film never taken (each later film answered the order before it),
# a flare while the last flare's screening waits for its film, a decline then criteria after the review.
# Recorded before that revision.
REVISION_6 = [
    (4, "mri", {"etiology": "osteoporotic"}),
    (20, "pain", {"nrs": 3}),
    (30, "pain", {"nrs": 7}),
    (33, "pain", {"nrs": 3}),
    (40, "pain", {"nrs": 7}),
    (43, "radiograph", {"height_loss_pct": 26}),
    (70, "pain", {"nrs": 6}),
    (80, "clinician", {**PAUSE, "decision": "decline_augmentation"}),
    (84, "pain", {"nrs": 6}),
    (85, "radiograph", {"height_loss_pct": 26}),
]
# Films observed at the instant their scheduled orders are placed (from revision 7 each is its order's result;
# before, each order waited for the next film and the week-6 one escalated on day 56). Recorded before it.
REVISION_7 = [
    (3, "mri", {"etiology": "osteoporotic"}),
    (14, "radiograph", {"height_loss_pct": 25}),
    (42, "radiograph", {"height_loss_pct": 26}),
    (50, "pain", {"nrs": 3}),
]
# A review held for a recent pain report, then paused; the report comes during the pause (from revision 8 it
# counts on resume, as any report from day 70 on counts for a held review; before, the window moved to the
# last 14 days before the resume and the review lapsed). Recorded before it.
REVISION_8 = [
    (3, "mri", {"etiology": "osteoporotic"}),
    (60, "pain", {"nrs": 6}),
    (86, "clinician", PAUSE),
    (95, "pain", {"nrs": 6}),
    (120, "clinician", {**PAUSE, "decision": "resume"}),
]
# A pain report observed three days before enrollment (counted at day 0 before revision 9, making day 20 a flare;
# refused from it), and a flare the day after the 6-month screening was ordered, its film not yet taken (covered by
# that screening before revision 9; its own order from it). Recorded before it.
REVISION_9 = [
    (0.001, "pain", {"nrs": 1, "observed_day": -3}),
    (20, "pain", {"nrs": 4}),
    (183, "pain", {"nrs": 7}),
]
STORIES = {"story": (STORY, 130, 8), "indeterminate_mri": (INDETERMINATE_MRI, 12, 6),
           "late_evidence": (LATE_EVIDENCE, 95, 6), "refused_then_resent": (REFUSED_THEN_RESENT, 20, 6),
           "completed": (COMPLETED, 366, 6), "same_instant": (SAME_INSTANT, 90, 6),
           "revision_5": (REVISION_5, 200, 6), "screenings_together": (SCREENINGS_TOGETHER, 372, 6),
           "withdrawn_in_course": (WITHDRAWN_IN_COURSE, 12, 6), "revision_6": (REVISION_6, 200, 6),
           "revision_7": (REVISION_7, 60, 6), "revision_8": (REVISION_8, 125, 6),
           "revision_9": (REVISION_9, 185, 8)}


async def record_story(env: WorkflowEnvironment, patient_id: str, story: str = "story") -> str:
    """Run a story (the default touches every handler) to its last day and return the history as JSON."""
    events, until_day, pain_nrs = STORIES[story]
    book = OrderBook(Path("/tmp") / f"record-{uuid.uuid4()}.db")
    task_queue = f"record-{uuid.uuid4()}"
    async with make_worker(env, book, task_queue):
        handle = await start_pathway(env.client, Enrollment(id=patient_id, fracture_level="L2", height_loss_pct=25,
                                                            pain_nrs=pain_nrs), task_queue=task_queue,
                                     options=PathwayOptions(search_attributes=False, ui_metadata=False))
        enrolled_at = (await handle.query(PatientPathwayWorkflow.state)).enrolled_at
        for day, how, payload in events:
            delta = enrolled_at + timedelta(days=day) - await env.get_current_time()
            if delta > timedelta(0):
                await env.sleep(delta)
            if "observed_day" in payload:  # a report that arrives after the day it was observed
                payload = {**{k: v for k, v in payload.items() if k != "observed_day"},
                           "observed_at": (enrolled_at + timedelta(days=payload["observed_day"])).isoformat()}
            if how == "update":
                await handle.execute_update(PatientPathwayWorkflow.submit_event, payload)
            else:
                await handle.signal(how, payload)
        await env.sleep(enrolled_at + timedelta(days=until_day) - await env.get_current_time())
        await handle.query(PatientPathwayWorkflow.state)
        history = await handle.fetch_history()
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("recorded")
    return history.to_json()


async def _main(name: str, story: str) -> None:
    env = await start_test_server(TEST_CONVERTER)
    try:
        text = await record_story(env, f"pt-history-{name}", story)
        (HERE / f"{name}.json").write_text(json.dumps(json.loads(text), indent=1) + "\n")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "pathway_v1"
    asyncio.run(_main(name, sys.argv[2] if len(sys.argv) > 2 else "story"))
