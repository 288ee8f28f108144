"""Handing one accepted event to a patient's pathway, exactly once.

The event id is claimed in the registry before the signal is sent, so concurrent retries send
it once; a refused or failed signal gives the claim back, so the same event can be sent again. An
event the pathway refused when it came to apply it (a pause while already paused) is judged again
when sent again, as the pathway frees its id: the registry's claim alone would answer a duplicate.
Without an event id the API assigns one, so that a retried signal cannot apply twice.

After a pathway has ended, a result still fulfils the open order it answers (and raises a
care-team task where it calls for one): :mod:`activities.results_after_end`. Any other event, or a
result no open order waits for, answers 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

from activities.database import as_stored
from activities.order_book import OrderBook
from activities.results_after_end import record_result_after_end, recorded_result_after_end, takes_result_after_end
from api.errors import ApiError
from api.models import EventAnswer, ResultAfterEndAnswer
from api.pathways import Pathways
from api.records import in_thread
from api.registry import EnrollmentRecord, Registry, payload_hash
from pathway.contract import Event
from pathway.intake import day_of, observed_too_early

log = logging.getLogger("api")


async def accept_event(registry: Registry, pathways: Pathways, book: OrderBook, patient: EnrollmentRecord,
                       event: Event, id_field: str = "event_id", submitted_by: str = "token",
                       when_field: str = "observed_at") -> EventAnswer:
    """Signal the event unless its id was taken; ``duplicate`` says whether it was.

    422 naming ``when_field`` for a pain report from before enrollment or a result from before the
    fracture (:func:`pathway.intake.observed_too_early`); 409 naming ``id_field`` if the id was taken
    by a different event, or if the pathway has ended (unless the event is a result an open order
    waits for); 503 if the workflow service cannot be reached. ``submitted_by`` (the caller's
    credential name) is kept with the event id claim: the contract's events have no field for it.
    """
    patient_id = patient.patient_id
    # Stored and compared as the database writes it (a NUL as U+FFFD), so a retry in either form is this event.
    event_id = as_stored(event.event_id) if event.event_id else f"api-{uuid.uuid4().hex}"
    if event.observed_at is not None:  # one instant, one form: a retry written in another zone is the same event
        event = event.model_copy(update={"observed_at": event.observed_at.astimezone(UTC)})
    payload = event.model_dump(mode="json", exclude_none=True) | {"event_id": event_id}
    answer = EventAnswer(accepted=True, patient_id=patient_id, event_id=event_id, type=event.type,
                         state_url=f"/v1/patients/{patient_id}", duplicate=False)
    claim = await in_thread(registry.claim_event, patient_id, event_id, event.type, payload_hash(payload),
                           submitted_by)
    # The same event again: a duplicate, unless the pathway refused it and freed its id (then it is judged again).
    if claim == "same" and not (refused := await _refused(pathways, patient_id, event_id)):
        if refused is None:  # no worker said: sent again all the same (the pathway ignores an id it holds)
            with contextlib.suppress(ApiError):
                await pathways.send_event(patient_id, payload)
        return await _duplicate(pathways, book, patient, event, answer)
    if claim == "different":
        raise ApiError(409, "event_id already used", [f"{id_field}: already used for a different event"])
    if claim == "new" and (early := _observed_too_early(patient, event)) is not None:
        await in_thread(registry.release_event, patient_id, event_id)
        raise ApiError(422, "invalid event", [when_field + early.removeprefix("observed_at")])
    try:
        try:
            await pathways.ensure_open(patient_id)
        except ApiError as ended:
            if ended.status != 409 or not takes_result_after_end(event):
                raise
            return answer.model_copy(update={"after_end": await _result_after_end(book, patient, event, event_id,
                                                                                    ended)})
        await pathways.send_event(patient_id, payload)
    except BaseException:
        await asyncio.shield(in_thread(registry.release_event, patient_id, event_id))
        raise
    log.info("event accepted", extra={"event_type": event.type})
    return answer


async def _duplicate(pathways: Pathways, book: OrderBook, patient: EnrollmentRecord, event: Event,
                     answer: EventAnswer) -> EventAnswer:
    """The answer to an event accepted before; a result sent again after the end says what it did then."""
    answer = answer.model_copy(update={"duplicate": True})
    if takes_result_after_end(event):  # sent again after the end: what it did the first time, done once
        earlier = await in_thread(recorded_result_after_end, book, workflow_id=patient.workflow_id, event=event,
                                  result_key=answer.event_id)
        if earlier is not None:
            status = await _ended_status(pathways, patient.patient_id)
            answer = answer.model_copy(update={"after_end": ResultAfterEndAnswer(
                pathway_status=status, fulfilled_orders=earlier.fulfilled, escalation_task=earlier.escalation,
                summary=earlier.summary(event, status))})
    return answer


def _observed_too_early(patient: EnrollmentRecord, event: Event) -> str | None:
    """Why the event was observed too early to count for this patient (:func:`observed_too_early`), or None:
    judged for every patient, also one whose pathway still decides by a revision that took such events."""
    if event.observed_at is None or patient.started_at is None:
        return None
    return observed_too_early(event, day_of(event.observed_at, patient.started_at),
                              int(patient.enrollment.get("onset_days_before_enrollment") or 0))


async def _refused(pathways: Pathways, patient_id: str, event_id: str) -> bool | None:
    """Whether the running pathway refused the event whose id the registry holds, when it came to apply
    it (and freed the id); None when no worker answered in time. False for an ended pathway: its answer
    stands."""
    try:
        await pathways.ensure_open(patient_id)
    except ApiError:
        return False
    return await pathways.event_refused(patient_id, event_id)


async def _ended_status(pathways: Pathways, patient_id: str) -> str:
    """How the patient's pathway ended (``completed``, ``withdrawn``, ``exited``)."""
    try:
        await pathways.ensure_open(patient_id)
    except ApiError as ended:
        if ended.status == 409:
            return _status_of(ended)
        raise
    return "running"  # not reached for a result taken after the end: a pathway does not start again


def _status_of(ended: ApiError) -> str:
    return ended.detail[0].removeprefix("pathway: ").split(";")[0] if ended.detail else "ended"


async def _result_after_end(book: OrderBook, patient: EnrollmentRecord, event: Event, event_id: str,
                            ended: ApiError) -> ResultAfterEndAnswer:
    """Fulfil the open order a result answers after the end, or re-raise the 409."""
    status = _status_of(ended)
    at = event.observed_at or datetime.now(UTC)
    day = max(0.0, day_of(at, patient.started_at)) if patient.started_at else 0.0
    done = await in_thread(record_result_after_end, book, workflow_id=patient.workflow_id,
                           patient_id=patient.patient_id, event=event, day=day, result_key=event_id, status=status,
                           enrolled_level=patient.enrollment.get("fracture_level"),
                           enrolled_height_loss=patient.enrollment.get("height_loss_pct"),
                           red_flags=patient.enrollment.get("red_flags") or ())
    if not done.fulfilled:
        raise ApiError(409, "the pathway has ended",
                       [*ended.detail, f"type: no open {event.type} order waits for this result"])
    log.info("result after the end recorded", extra={"event_type": event.type, "escalated": bool(done.escalation)})
    return ResultAfterEndAnswer(pathway_status=status, fulfilled_orders=done.fulfilled,
                                escalation_task=done.escalation, summary=done.summary(event, status))
