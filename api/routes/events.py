"""``/v1/patients/{patient_id}/events``: one contract event into a patient's pathway."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from activities.order_book import order_key
from api.bodies import required
from api.deps import (
    AUTHENTICATED,
    CallerDep,
    EnrolledPatient,
    JsonBody,
    OrderBookDep,
    PathwaysDep,
    RegistryDep,
    audit_subject,
    requires,
)
from api.errors import ApiError
from api.event_intake import accept_event
from api.inputs import valid_event
from api.models import EventAnswer
from api.openapi import errors, links, request_body
from api.records import in_thread
from pathway.results import ORDERS_ANSWERED_BY

router = APIRouter(prefix="/v1/patients", tags=["patients"], dependencies=[AUTHENTICATED])

EVENT_EXAMPLE = {"type": "pain", "nrs": 6, "event_id": "pain-0001"}


@router.post("/{patient_id}/events", status_code=202, operation_id="post_event", summary="Submit one contract event",
             response_description="Held durably by the workflow service; applied once a worker runs",
             openapi_extra=request_body("Event", EVENT_EXAMPLE),
             dependencies=[requires("pathways:write", "decisions:write")],
             responses={202: links("", get_state={"patient_id": "patient_id"}),
                        200: {"model": EventAnswer, "description": "This event id was already accepted (applied once)"},
                        **errors(401, 403, 404, 409, 413, 422, 503)})
async def post_event(request: Request, caller: CallerDep, patient: EnrolledPatient, body: JsonBody,
                     response: Response, registry: RegistryDep, pathways: PathwaysDep,
                     book: OrderBookDep) -> EventAnswer:
    """202 once the event is durably held (applied as soon as a worker runs); 200 for an
    event_id already accepted with the same event; 409 if the pathway has ended or the event_id
    was used for a different event. After the end, a result (mri, radiograph, dxa) still
    fulfils the open order it answers (``after_end``; an MRI saying malignant or infection raises
    an urgent care-team task, a radiograph naming a new fracture level one too, urgent with an
    enrollment red flag, and an indeterminate MRI or a deformity progressed a routine one); another
    event, or a result no open order waits for, answers 409.

    Scopes: ``pathways:write``; a ``clinician`` event (a decision) needs ``decisions:write``
    instead (403 naming the scope lacking). Who sent it is kept with its event id and in the
    audit trail (the event itself has no field for it)."""
    event = valid_event(required(body))
    caller.require("decisions:write" if event.type == "clinician" else "pathways:write")
    named = getattr(event, "fulfils", None)
    if named is not None:  # the order a result names must be one of this patient's that such a result answers
        order = await in_thread(book.get_by_key, order_key(patient.workflow_id, named))
        if order is None:
            raise ApiError(404, "unknown order", ["fulfils: no such order of this patient"])
        if order.kind not in ORDERS_ANSWERED_BY.get(event.type, []):
            raise ApiError(409, "the order does not wait for this result",
                           [f"fulfils: {order.kind} is not answered by a {event.type} result"])
    answer = await accept_event(registry, pathways, book, patient, event, submitted_by=caller.name)
    audit_subject(request, patient.patient_id, answer.event_id)
    response.status_code = 200 if answer.duplicate else 202
    return answer
