"""``/v1/patients``: enroll a patient, read where the patient is, and the timeline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request, Response

from activities.results_after_end import recorded_after_end
from api.bodies import required
from api.deps import (
    AUTHENTICATED,
    DefinitionDep,
    EnrolledPatient,
    JsonBody,
    OrderBookDep,
    PathwaysDep,
    RegistryDep,
    audit_subject,
    requires,
)
from api.errors import ApiError
from api.models import EnrollmentAnswer, PatientState, Timeline
from api.openapi import errors, links, request_body
from api.readouts import read_state, timeline_body
from api.records import in_thread
from api.registry import IdCaseClash, canonical
from pathway.contract import ContractError, parse_enrollment
from workflows.models import workflow_id_for

router = APIRouter(prefix="/v1/patients", tags=["patients"], dependencies=[AUTHENTICATED])

ENROLLMENT_EXAMPLE = {"id": "pt-0001", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8,
                      "onset_days_before_enrollment": 3, "red_flags": []}
_LOCATION = {"Location": {"schema": {"type": "string"}, "required": True, "description": "the patient's state URL"}}
# Where an enrolled patient leads: its state, timeline, CarePlan and events.
PATIENT_LINKS = links("", get_state={"patient_id": "patient_id"}, get_timeline={"patient_id": "patient_id"},
                      get_care_plan={"patient_id": "patient_id"}, post_event={"patient_id": "patient_id"})


@router.post("", status_code=201, operation_id="enroll", summary="Enroll a patient (starts the pathway)",
             response_description="The pathway was started",
             openapi_extra=request_body("Enrollment", ENROLLMENT_EXAMPLE), dependencies=[requires("pathways:write")],
             responses={201: {"headers": _LOCATION, **PATIENT_LINKS},
                        200: {"model": EnrollmentAnswer, "headers": _LOCATION, **PATIENT_LINKS,
                              "description": "Already enrolled with the same data (nothing changed)"},
                        **errors(401, 403, 409, 413, 422, 503)})
async def enroll(request: Request, body: JsonBody, response: Response, registry: RegistryDep, pathways: PathwaysDep,
                 definition: DefinitionDep) -> EnrollmentAnswer:
    """201 when the pathway starts; 200 for the same enrollment again; 409 for the same id with
    different data; 422 for an id that differs from an enrolled one only by letter case (ids are
    case-sensitive). If the pathway cannot be started (503), the id is not kept."""
    try:
        enrollment = parse_enrollment(required(body))
    except ContractError as exc:
        raise ApiError(422, "invalid enrollment", exc.errors) from None
    audit_subject(request, enrollment.id)
    data = canonical(enrollment.model_dump(mode="json"))
    workflow_id = workflow_id_for(enrollment.id)
    try:
        record = await in_thread(registry.claim, enrollment.id, workflow_id, data)
    except IdCaseClash:
        raise ApiError(422, "invalid enrollment", [
            "id: differs only by letter case from an enrolled patient's id "
            "(ids are case-sensitive; use the enrolled id or another)"]) from None
    if record.body != data and not _same_enrollment(record.enrollment, json.loads(data)):
        raise ApiError(409, "patient already enrolled with different data",
                       ["id: already enrolled; the enrollment cannot be changed (send events instead)"])
    started = False
    if record.started_at is None:
        try:
            started = await pathways.start(enrollment)
        except BaseException:
            # Not started: free the id, so that a corrected enrollment is not refused as a conflict.
            await asyncio.shield(in_thread(registry.release, enrollment.id))
            raise
        await in_thread(registry.mark_started, enrollment.id, workflow_id, data)
    response.status_code = 201 if started else 200
    response.headers["Location"] = f"/v1/patients/{enrollment.id}"
    return EnrollmentAnswer(patient_id=enrollment.id, workflow_id=workflow_id, guideline_version=definition.version,
                            created=started, state_url=f"/v1/patients/{enrollment.id}")


@router.get("/{patient_id}", operation_id="get_state", summary="Where the patient is on the pathway",
            response_description="The patient's state; `source` and `notes` say how it was read",
            responses={200: links("/pending_orders/0", get_order={"order_id": "id"},
                                  acknowledge_order={"order_id": "id"}),
                       **errors(401, 403, 404, 503)}, dependencies=[requires("pathways:read")])
async def get_state(patient: EnrolledPatient, pathways: PathwaysDep, book: OrderBookDep,
                    definition: DefinitionDep) -> PatientState:
    """Phase, pathway day, guideline version, latest pain, actions (with rationale and citation),
    pending orders, next review. ``source`` says where it was read from: the live workflow, or
    (no worker answering, or the pathway ended) the workflow history, search attributes and
    order book; then ``live`` is false and ``notes`` say what is missing."""
    return (await read_state(patient, pathways, book, definition))[0]


@router.get("/{patient_id}/timeline", operation_id="get_timeline",
            summary="Events, actions, notes and rejections in order",
            response_description="The patient's timeline", dependencies=[requires("pathways:read")],
            responses=errors(401, 403, 404, 503))
async def get_timeline(patient: EnrolledPatient, pathways: PathwaysDep, book: OrderBookDep) -> Timeline:
    """The workflow's timeline, and the results taken after the end (from the order book); without a worker,
    the actions from the order book (``live`` false)."""
    entries = await pathways.timeline(patient.patient_id)
    orders = [] if entries is not None else await in_thread(book.list, patient_id=patient.patient_id)
    ended = entries is None or any(e.entry == "ended" for e in entries)  # without a worker: whatever the book has
    after_end = await in_thread(recorded_after_end, book, patient.workflow_id) if ended else []
    return timeline_body(patient, entries, orders, pathways.query_timeout.total_seconds(), after_end)


def _same_enrollment(kept: dict[str, Any], sent: dict[str, Any]) -> bool:
    """Whether two enrollments say the same: red flags are a set (their order says nothing)."""
    def flags(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "red_flags": sorted(body.get("red_flags") or [])}
    return flags(kept) == flags(sent)
