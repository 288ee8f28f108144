"""FHIR R4 routes: an Observation in, a patient's CarePlan out, an order's resource at its address.

Answers are ``application/fhir+json``; errors keep the API's one JSON error shape.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from activities.order_model import REQUEST_RESOURCES
from activities.results_after_end import AFTER_END_KIND
from api import fhir
from api.bodies import required
from api.deps import (
    AUTHENTICATED,
    CallerDep,
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
from api.event_intake import accept_event
from api.fhir_models import FHIR_JSON, CarePlan, OrderResource
from api.fhir_observation import named_patient, observation_event
from api.models import EventAnswer
from api.openapi import errors, links, request_body
from api.readouts import read_state
from api.records import in_thread, order_resource, require_enrolled

router = APIRouter(tags=["fhir"], dependencies=[AUTHENTICATED])

OBSERVATION_EXAMPLE = {
    "resourceType": "Observation", "id": "obs-pain-0001", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3",
                         "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}]},
    "subject": {"reference": "Patient/pt-0001"}, "valueInteger": 6,  # no effectiveDateTime: observed when received
}


class FhirJSONResponse(JSONResponse):
    """JSON with FHIR's media type."""

    media_type = FHIR_JSON


@router.post("/v1/fhir/Observation", status_code=202, operation_id="post_observation",
             summary="Submit a FHIR R4 Observation (pain NRS or DXA T-score)",
             response_description="Held durably as a contract event; applied once a worker runs",
             openapi_extra=request_body("Observation", OBSERVATION_EXAMPLE, FHIR_JSON, "application/json"),
             responses={202: links("", get_state={"patient_id": "patient_id"}),
                        200: {"model": EventAnswer, "description": "This Observation id was already accepted"},
                        **errors(401, 403, 404, 409, 413, 422, 503)},
             dependencies=[requires("pathways:write")])
async def post_observation(request: Request, caller: CallerDep, body: JsonBody, response: Response,
                           registry: RegistryDep, pathways: PathwaysDep, book: OrderBookDep) -> EventAnswer:
    """LOINC 72514-3 (``valueInteger`` 0-10) becomes a ``pain`` event, LOINC 38267-1
    (``valueQuantity.value`` -6..4) a ``dxa`` event; ``Observation.id`` (or its first
    identifier's value) is the event id, ``effectiveDateTime`` the time observed. Elements
    outside the profile in the schema are refused (422 naming them)."""
    raw = required(body)
    named = named_patient(raw)  # audited before the rest is judged: a refused Observation is recorded too
    if named:
        audit_subject(request, named)
    patient_id, event, id_field = observation_event(raw)
    patient = await require_enrolled(registry, patient_id, "subject.reference")
    answer = await accept_event(registry, pathways, book, patient, event, id_field, submitted_by=caller.name,
                                when_field="effectiveDateTime")
    audit_subject(request, patient_id, answer.event_id)
    response.status_code = 200 if answer.duplicate else 202
    return answer


@router.get("/v1/patients/{patient_id}/CarePlan", operation_id="get_care_plan",
            summary="The pathway as a FHIR R4 CarePlan",
            response_description="The patient's CarePlan",
            response_model=CarePlan, response_class=FhirJSONResponse, responses=errors(401, 403, 404, 503),
            dependencies=[requires("pathways:read")])
async def get_care_plan(patient: EnrolledPatient, pathways: PathwaysDep, book: OrderBookDep,
                        definition: DefinitionDep) -> FhirJSONResponse:
    """A CarePlan whose activities reference the patient's orders (see /v1/orders)."""
    state, orders = await read_state(patient, pathways, book, definition)
    status = "paused" if state.paused and state.status == "running" else state.status
    decisions = state.notes or []
    notes = [f"Day {n.day:g}: {n.text}" for n in decisions] + state.source_notes
    # What the latest MRI said: a pathologic one after the pathway ended (its urgent task), the
    # pathologic exit's work-up, or its result note (mri:DAY:ETIOLOGY).
    read = [n.id.rsplit(":", 1)[1] for n in sorted(decisions, key=lambda n: n.day) if n.id.startswith("mri:")]
    found = [o for o in orders if o.kind in (AFTER_END_KIND, "refer_pathologic_fracture_workup")
             and o.details.get("etiology")]
    mri = max(found, key=lambda o: (o.kind == AFTER_END_KIND, o.day)).details["etiology"] if found else \
        (read[-1] if read else None)
    return FhirJSONResponse(fhir.care_plan(
        patient_id=patient.patient_id, status=status, title=definition.title, guideline_version=state.guideline_version,
        enrolled_at=state.enrolled_at, orders=orders, notes=notes, mri=mri))


@router.get("/v1/fhir/{resource_type}/{resource_id}", operation_id="read_resource",
            summary="One order's FHIR resource at its FHIR address", response_description="The order's FHIR resource",
            response_model=OrderResource, response_class=FhirJSONResponse, responses=errors(401, 403, 404),
            dependencies=[requires("pathways:read")])
async def read_resource(request: Request,
        resource_type: Annotated[str, Path(json_schema_extra={"enum": list(REQUEST_RESOURCES)},
                                           description="Another type answers 404")],
        resource_id: str, book: OrderBookDep) -> FhirJSONResponse:
    """FHIR read of an order's resource: what Bundle ``fullUrl`` and CarePlan references point at.
    404 unless an order of that id has that resource type."""
    known_type = resource_type in REQUEST_RESOURCES
    order = await in_thread(book.get, resource_id) if known_type else None
    if order is not None:  # read, if only to refuse it under another type: the patient's audit trail says so
        audit_subject(request, order.patient_id)
    if order is None or order.resource != resource_type:
        raise ApiError(404, "unknown order", [f"{resource_type}: no such resource id" if known_type else
                                              f"resource_type: expected one of {', '.join(REQUEST_RESOURCES)}"])
    return FhirJSONResponse(await order_resource(book, order))
