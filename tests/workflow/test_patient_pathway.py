"""The patient workflow on the time-skipping server: events, updates, queries, a whole year."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue

from activities.order_book import order_key
from pathway.contract import ACTION_KINDS
from pathway.revision import REVISION
from tests.helpers import NO_SERVER_FEATURES, advance, enrollment, make_worker
from workflows.models import MAX_REJECTIONS_KEPT
from workflows.patient_pathway import UNREADABLE, PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def kinds(handle: WorkflowHandle) -> Counter:
    return Counter(a.kind for a in await handle.query(PatientPathwayWorkflow.actions))


async def test_malformed_signal_is_recorded_and_the_pathway_goes_on(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-01"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 11})
        await handle.signal(PatientPathwayWorkflow.event, "not an object")
        await handle.signal(PatientPathwayWorkflow.event, {"type": "xray", "height_loss_pct": 30})
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic", "surprise": 1})
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic"})  # PT waits for it
        await advance(ts_env, handle, 8)
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 3})
        await advance(ts_env, handle, 8.5)
        state = await handle.query(PatientPathwayWorkflow.state)
        reasons = [r.reason for r in state.rejected]
        assert len(reasons) == 4, reasons
        assert "nrs:" in reasons[0] and "less than or equal to 10" in reasons[0]
        assert reasons[1].startswith("body:") or "type" in reasons[1]
        assert "type: unknown event type" in reasons[2]
        assert "surprise: unknown field" in reasons[3]
        assert state.status == "running"
        assert state.latest_pain.nrs == 3 and state.latest_pain.day == 8
        assert "refer_physical_therapy" in await kinds(handle)
        await handle.terminate("test done")


async def test_a_signal_body_no_json_reader_takes_is_refused_not_dropped(ts_env, order_book, task_queue):
    """The SDK drops a signal whose body its converter cannot read, with a worker log line only: the handler
    reads it itself, so it is listed as refused like any malformed event, and the patient goes on."""
    bodies = [b'{"nrs": 5', b"", b'{"nrs": 5, "note": "\\ud800"}', b'{"nrs": 5, "x": ' + b"[" * 300 + b"]" * 300 + b"}"]
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-unreadable"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        for body in bodies:
            raw = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=body))
            await handle.signal("pain", raw)
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 4})
        await advance(ts_env, handle, 1)
        state = await handle.query(PatientPathwayWorkflow.state)
        await handle.terminate("test done")
    assert [(r.event_type, r.reason) for r in state.rejected] == [("pain", UNREADABLE)] * len(bodies)
    assert state.latest_pain.nrs == 4


async def test_a_flood_of_malformed_signals_keeps_the_state_bounded(ts_env, order_book, task_queue):
    """Thousands of unknown keys are refused in a few lines; beyond the last 100 refusals the state
    keeps a count, so continue-as-new can always carry it; the pathway goes on."""
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-flood"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        wide = {"type": "pain", "nrs": 3, **{f"k{i}": 0 for i in range(2000)}}
        await handle.signal(PatientPathwayWorkflow.event, wide)
        for i in range(MAX_REJECTIONS_KEPT + 20):
            await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 11, "event_id": f"bad-{i}"})
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 5})
        await advance(ts_env, handle, 1)
        state = await handle.query(PatientPathwayWorkflow.state)
        timeline = await handle.query(PatientPathwayWorkflow.timeline)
        await handle.terminate("test done")
    assert len(state.rejected) == MAX_REJECTIONS_KEPT and state.rejected_dropped == 21
    assert state.rejected[-1].event_id == f"bad-{MAX_REJECTIONS_KEPT + 19}"  # the newest are the ones kept
    assert len([t for t in timeline if t.entry == "rejected"]) == MAX_REJECTIONS_KEPT
    assert state.latest_pain.nrs == 5 and state.status == "running"


async def test_update_validator_rejects_with_the_field_and_accepts_with_actions(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-02"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        with pytest.raises(WorkflowUpdateFailedError) as bad:
            await handle.execute_update(PatientPathwayWorkflow.submit_event, {"type": "dxa", "t_score": -9})
        assert "t_score" in str(bad.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as early:
            await handle.execute_update(PatientPathwayWorkflow.submit_event,
                                        {"type": "clinician", "decision": "confirm_nerve_block",
                                         "reason": "severe pain", "author": "dr-a"})
        assert "no nerve-block offer" in str(early.value.cause)
        receipt = await handle.execute_update(PatientPathwayWorkflow.submit_event,
                                              {"type": "neuro", "deficit": True, "event_id": "n-1"})
        assert receipt.accepted and [a.kind for a in receipt.actions] == ["refer_urgent_spine_surgery"]
        again = await handle.execute_update(PatientPathwayWorkflow.submit_event,
                                            {"type": "neuro", "deficit": True, "event_id": "n-1"})
        assert again.duplicate and not again.actions
        assert (await kinds(handle))["refer_urgent_spine_surgery"] == 1
        await handle.terminate("test done")


async def test_an_event_refused_when_applied_is_judged_again_when_sent_again(ts_env, order_book, task_queue):
    """A refused event leaves its event id free: sent again once it makes sense, it is applied."""
    pause = {"type": "clinician", "decision": "pause", "reason": "ward", "author": "dr-a"}
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-resent"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await handle.execute_update(PatientPathwayWorkflow.submit_event, {**pause, "event_id": "c-1"})
        await handle.signal(PatientPathwayWorkflow.clinician, {**pause, "event_id": "c-2"})  # already paused
        await advance(ts_env, handle, 1)
        await handle.execute_update(PatientPathwayWorkflow.submit_event,
                                    {**pause, "decision": "resume", "event_id": "c-3"})
        again = await handle.execute_update(PatientPathwayWorkflow.submit_event, {**pause, "event_id": "c-2"})
        state = await handle.query(PatientPathwayWorkflow.state)
        await handle.terminate("test done")
    assert [r.event_id for r in state.rejected] == ["c-2"] and "already paused" in state.rejected[0].reason
    assert again.accepted and not again.duplicate and state.paused


async def test_clinician_decisions_are_recorded_with_author_and_reason(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-03"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        pause = {"type": "clinician", "decision": "pause", "reason": "inpatient stay", "author": "dr-b"}
        await handle.signal(PatientPathwayWorkflow.clinician, pause)
        await advance(ts_env, handle, 20)
        state = await handle.query(PatientPathwayWorkflow.state)
        assert state.paused and "order_radiograph" not in await kinds(handle)
        assert "outreach_missed_follow_up" not in await kinds(handle)
        await handle.signal(PatientPathwayWorkflow.clinician, {**pause, "decision": "resume", "reason": "home"})
        await advance(ts_env, handle, 20.1)
        actions = await handle.query(PatientPathwayWorkflow.actions)
        held = [a for a in actions if a.kind == "order_radiograph"]
        assert len(held) == 1 and held[0].day == 20  # the week-2 film, fired on resume
        await handle.signal(PatientPathwayWorkflow.clinician,
                            {"type": "clinician", "decision": "withdraw", "reason": "moved away", "author": "dr-c"})
        result = await handle.result()
        assert result.status == "withdrawn"
        timeline = await handle.query(PatientPathwayWorkflow.timeline)
        decisions = [t.data for t in timeline if t.entry == "event" and t.data.get("type") == "clinician"]
        assert [(d["decision"], d["author"], d["reason"]) for d in decisions] == [
            ("pause", "dr-b", "inpatient stay"), ("resume", "dr-b", "home"), ("withdraw", "dr-c", "moved away")]
        assert timeline[-1].entry == "ended"


async def test_enrollment_to_twelve_month_completion(ts_env, order_book, task_queue):
    """A whole year: weekly pain reports, the scheduled films, the review, both screenings."""
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-04"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic"})
        for day in range(7, 365, 10):
            await advance(ts_env, handle, day)
            await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 6 if day < 100 else 2})
        result = await handle.result()
        assert result.status == "completed"
        assert result.day == pytest.approx(365, abs=0.01)
        counts = Counter(a.kind for a in result.actions)
        assert counts["order_radiograph"] == 3
        assert counts["refer_vertebral_augmentation"] == 1  # NRS 6 at day 84 >= 5
        assert counts["order_adjacent_fracture_screening"] == 2
        assert counts["stop_calcitonin"] == 1
        assert "outreach_missed_follow_up" not in counts  # never more than 14 days without a report
        review = next(a for a in result.actions if a.kind == "refer_vertebral_augmentation")
        assert review.details["criteria"] == ["persistent_pain"] and review.day == 84
        book = order_book.list(workflow_id=handle.id)
        orders = [o for o in book if o.kind != "escalate_overdue_result"]
        assert sorted(o.action_id for o in orders) == sorted(a.id for a in result.actions)
        assert {o.kind for o in orders} <= set(ACTION_KINDS)
        # The pathway's own escalations (the day-365 screening's is the watch's, after the end).
        overdue = sorted(o.details["order_action_id"] for o in book if o.kind == "escalate_overdue_result"
                         and o.day <= 365)
        assert overdue == ["order_adjacent_fracture_screening:day-182", "order_dxa", "order_radiograph:day-14",
                           "order_radiograph:day-42", "order_radiograph:day-84"]  # no film or DXA ever came back
        start = next(o for o in orders if o.kind == "start_calcitonin")
        assert start.status == "stopped"


async def test_imaging_order_without_result_escalates_once(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-05"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await advance(ts_env, handle, 3)
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic"})
        await advance(ts_env, handle, 14)
        assert not [o for o in order_book.list(workflow_id=handle.id) if o.kind == "escalate_overdue_result"]
        await advance(ts_env, handle, 14.01)
        tasks = [o for o in order_book.list(workflow_id=handle.id) if o.kind == "escalate_overdue_result"]
        assert [t.details["order_action_id"] for t in tasks] == ["order_dxa"]  # the MRI came back
        await handle.signal(PatientPathwayWorkflow.radiograph, {"height_loss_pct": 25})  # answers week 2
        await advance(ts_env, handle, 60)
        overdue = sorted(o.details["order_action_id"] for o in order_book.list(workflow_id=handle.id)
                         if o.kind == "escalate_overdue_result")
        assert overdue == ["order_dxa", "order_radiograph:day-42"]
        orders = {o.action_id: o.status for o in order_book.list(workflow_id=handle.id)}
        assert orders["order_mri"] == "completed" and orders["order_radiograph:day-14"] == "completed"
        await handle.terminate("test done")


async def test_a_deficit_reported_later_makes_the_pending_mri_order_urgent(ts_env, order_book, task_queue):
    """Safety rule 5: a neurological deficit makes the enrollment MRI urgent — the order itself, not
    only the overdue clock."""
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-neuro"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await advance(ts_env, handle, 4)
        mri = next(o for o in order_book.list(workflow_id=handle.id) if o.action_id == "order_mri")
        assert mri.priority == "routine"
        await handle.signal(PatientPathwayWorkflow.neuro, {"deficit": True})
        await advance(ts_env, handle, 5)
        await handle.terminate("test done")
    orders = {o.action_id: o for o in order_book.list(workflow_id=handle.id)}
    assert orders["order_mri"].priority == "urgent" and orders["order_mri"].status == "active"
    assert orders["refer_urgent_spine_surgery:4"].details["expedite_mri"] is True
    change = order_book.task_history(orders["order_mri"].id)[-1]
    assert change.note == "urgent: refer_urgent_spine_surgery on day 4" and change.version == 2


async def test_a_new_pathway_decides_by_the_latest_revision(ts_env, order_book, task_queue):
    """A pathway started now records the latest decisions-revision patch, holds PT when an indeterminate
    MRI follows an osteoporotic one (revision 2) and dates a film's flag on the day it arrives, not the
    day it was taken (revision 3); the replay tests keep earlier revisions for older histories. (Revision
    4, events first at a step's instant, is in the scenario files: journey_review_evidence_on_its_day.)"""
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-revision", pain_nrs=6), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await advance(ts_env, handle, 1)
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic"})
        await advance(ts_env, handle, 3)
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "indeterminate"})
        await advance(ts_env, handle, 10)
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 3})
        await advance(ts_env, handle, 17)
        enrolled_at = (await handle.query(PatientPathwayWorkflow.state)).enrolled_at
        taken = (enrolled_at + timedelta(days=15)).isoformat()  # reported two days after it was taken
        await handle.signal(PatientPathwayWorkflow.radiograph,
                            {"height_loss_pct": 25, "new_fracture_level": "L3", "observed_at": taken})
        await advance(ts_env, handle, 18)
        state = await handle.query(PatientPathwayWorkflow.state)
        history = await handle.fetch_history()
        await handle.terminate("test done")
    assert "refer_physical_therapy" not in [a.kind for a in state.actions]
    assert "refer_physical_therapy:held:mri" in [n.id for n in state.notes]
    (flag,) = [a for a in state.actions if a.kind == "flag_new_vertebral_fracture"]
    assert flag.day == 17 and "Radiograph on day 15 shows a new fracture at L3" in flag.rationale
    assert "radiograph:15" in [n.id for n in state.notes]
    markers = [e.marker_recorded_event_attributes for e in history.events
               if e.HasField("marker_recorded_event_attributes")]
    assert any(f"decisions-revision-{REVISION}".encode() in m.SerializeToString() for m in markers), markers


async def test_a_pain_report_from_before_enrollment_and_a_result_from_before_the_fracture_are_refused(
        ts_env, order_book, task_queue):
    """Revision 9: before, a score of 1 from three days before enrollment counted at day 0 (in place of the
    enrollment's 8: day 20's NRS 4 was then a flare), and an MRI from years before closed the urgent MRI.
    A result since the fracture's onset (an MRI in the emergency department) still counts at day 0."""
    async with make_worker(ts_env, order_book, task_queue):
        patient = enrollment("pt-wf-early", onset_days_before_enrollment=2, red_flags=["history_of_cancer"])
        handle = await start_pathway(ts_env.client, patient, task_queue=task_queue, options=NO_SERVER_FEATURES)
        enrolled_at = (await handle.query(PatientPathwayWorkflow.state)).enrolled_at
        before = (enrolled_at - timedelta(days=3)).isoformat()
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 1, "observed_at": before, "event_id": "p-early"})
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            years_ago = (enrolled_at - timedelta(days=4000)).isoformat()
            await handle.execute_update(PatientPathwayWorkflow.submit_event,
                                        {"type": "mri", "etiology": "osteoporotic", "observed_at": years_ago})
        await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic", "event_id": "m-ed",
                                                         "observed_at": (enrolled_at - timedelta(days=1)).isoformat()})
        await advance(ts_env, handle, 20)
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 4})
        await advance(ts_env, handle, 21)
        state = await handle.query(PatientPathwayWorkflow.state)
        await handle.terminate("test done")
    assert "before the fracture (its onset was 2 day(s) before enrollment)" in str(refused.value.cause)
    (rejection,) = state.rejected
    assert rejection.event_id == "p-early" and rejection.reason.startswith("observed_at: 3.0 days before enrollment")
    assert "order_adjacent_fracture_screening" not in [a.kind for a in state.actions]  # 4 is no flare from 8
    assert "mri:0:osteoporotic" in [n.id for n in state.notes]  # the ED's MRI, at day 0
    assert order_book.get_by_key(order_key(handle.id, "order_mri")).status == "completed"


async def test_a_task_refusal_must_name_one_of_the_pathways_orders_as_it_went_out(ts_env, order_book, task_queue):
    """Revision 9: the kind is the order's own. Before, a refusal of the MRI order sent as kind "bogus" was
    noted as refused, which stopped its overdue clock, and alerted no one. One naming no action of the
    pathway (a care-team task's own: an escalation, an alert) is none of its orders: nothing to do."""
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-refusals"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await advance(ts_env, handle, 1)
        order_id = (await handle.query(PatientPathwayWorkflow.state)).orders["order_mri"]
        refusal = {"order_id": order_id, "action_id": "order_mri", "kind": "order_mri", "status": "rejected",
                   "reason": "scanner down"}
        for wrong in ({"kind": "bogus"}, {"action_id": "order_mri:nope"}, {"order_id": "ord-not-this-one"}):
            await handle.signal(PatientPathwayWorkflow.task_refused, {**refusal, **wrong})
        await advance(ts_env, handle, 2)
        refused = (await handle.query(PatientPathwayWorkflow.state)).rejected
        await handle.signal(PatientPathwayWorkflow.task_refused, refusal)
        await advance(ts_env, handle, 3)
        state = await handle.query(PatientPathwayWorkflow.state)
        await handle.terminate("test done")
    assert [r.reason for r in refused] == ["task_refused: kind: the order placed for action_id is order_mri",
                                           "task_refused: order_id: not the order placed for action_id"]
    assert "task-refused:order_mri" in [n.id for n in state.notes]
    assert [o.kind for o in order_book.list(workflow_id=handle.id) if o.kind == "alert_task_refused"] == \
        ["alert_task_refused"]


async def test_films_at_their_orders_instants_fulfil_those_orders(ts_env, order_book, task_queue):
    """Revision 7: a film observed at the instant its scheduled order is placed (the order's alarm rings a
    second later) is that order's result in the order book too, even while an older order is open (the
    week-2 film never taken stays the one without a result)."""
    async with make_worker(ts_env, order_book, task_queue):
        handle = await start_pathway(ts_env.client, enrollment("pt-wf-films", pain_nrs=6), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        for day in (42, 84):
            await advance(ts_env, handle, day)
            await handle.signal(PatientPathwayWorkflow.radiograph, {"height_loss_pct": 25})
        await advance(ts_env, handle, 100)
        state = await handle.query(PatientPathwayWorkflow.state)
        await handle.terminate("test done")
    book = {o.action_id: o for o in order_book.list(workflow_id=handle.id)}
    assert book["order_radiograph:day-42"].status == book["order_radiograph:day-84"].status == "completed"
    assert "adopted-order_radiograph:day-42" in book["order_radiograph:day-42"].status_reason
    assert book["order_radiograph:day-14"].status == "active"
    overdue = [n.id for n in state.notes if n.id.startswith("overdue:order_radiograph")]
    assert overdue == ["overdue:order_radiograph:day-14"]


async def test_a_result_still_queued_when_the_pathway_ends_fulfils_its_order(ts_env, order_book, task_queue):
    """A withdrawal and a malignant MRI accepted together: the MRI, still in the inbox when the pathway
    ends, is taken as a result after the end — it fulfils the MRI order and raises the urgent task."""
    # No worker yet: the start and both events reach the workflow in one activation.
    handle = await start_pathway(ts_env.client, enrollment("pt-wf-race"), task_queue=task_queue,
                                 options=NO_SERVER_FEATURES)
    await handle.signal(PatientPathwayWorkflow.event, {"type": "clinician", "decision": "withdraw",
                                                       "reason": "moved", "author": "dr-r"})
    await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "malignant"})
    await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "infection"})  # no MRI order is open for it
    async with make_worker(ts_env, order_book, task_queue):
        result = await handle.result()
    assert result.status == "withdrawn"
    book = {o.action_id: o for o in order_book.list(workflow_id=handle.id)}
    assert result.rejected[-2].reason.endswith(f"fulfilled its open order {book['order_mri'].id}")
    assert result.rejected[-1].reason == "the pathway has ended (withdrawn); no open mri order waits for this result"
    book = {o.action_id: o for o in order_book.list(workflow_id=handle.id)}
    assert book["order_mri"].status == "completed"
    (task,) = [o for o in book.values() if o.kind == "escalate_result_after_end"]
    assert task.priority == "urgent" and "malignant" in task.rationale
