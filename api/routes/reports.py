"""``/v1/fhir/DiagnosticReport`` (radiology results in) and ``/v1/fhir/CodeSystem`` (the codes they use)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.bodies import required
from api.deps import AUTHENTICATED, CallerDep, JsonBody, OrderBookDep, PathwaysDep, RegistryDep, audit_subject, requires
from api.errors import ApiError
from api.event_intake import accept_event
from api.fhir_codesystems import MRI_ETIOLOGY, code_system, code_system_ids
from api.fhir_models import FHIR_JSON
from api.fhir_observation import named_patient
from api.fhir_report import report_event, report_kind_matches, report_target
from api.models import EventAnswer
from api.openapi import errors, links, request_body
from api.records import in_thread, require_enrolled
from api.routes.fhir import FhirJSONResponse

router = APIRouter(tags=["fhir"], dependencies=[AUTHENTICATED])

MRI_REPORT_EXAMPLE = {
    "resourceType": "DiagnosticReport", "id": "rep-mri-0001", "status": "final",
    "code": {"text": "MRI lumbar spine without contrast"}, "subject": {"reference": "Patient/pt-0001"},
    "basedOn": [{"reference": "ServiceRequest/ord-0123456789abcdef0123"}],  # no effectiveDateTime: when received
    "conclusionCode": [{"coding": [{"system": MRI_ETIOLOGY, "code": "osteoporotic"}]}],
}


@router.post("/v1/fhir/DiagnosticReport", status_code=202, operation_id="post_diagnostic_report",
             summary="Submit an MRI or radiograph result as a FHIR R4 DiagnosticReport",
             response_description="Held durably as an mri or radiograph event; applied once a worker runs",
             openapi_extra=request_body("DiagnosticReportIn", MRI_REPORT_EXAMPLE, FHIR_JSON, "application/json"),
             responses={202: links("", get_state={"patient_id": "patient_id"}),
                        200: {"model": EventAnswer, "description": "This report id was already accepted"},
                        **errors(401, 403, 404, 409, 413, 422, 503)},
             dependencies=[requires("pathways:write")])
async def post_diagnostic_report(request: Request, caller: CallerDep, body: JsonBody, response: Response,
                                 registry: RegistryDep, pathways: PathwaysDep, book: OrderBookDep) -> EventAnswer:
    """An MRI report (``conclusionCode`` in the ``mri-etiology`` CodeSystem) becomes an ``mri``
    event; a radiograph report (contained Observations in ``radiograph-measure``) a ``radiograph``
    event; ``basedOn`` must name an imaging order of the same patient that such a report answers.
    From there it is the contract's event: a malignant or infective MRI exits the pathway."""
    raw = required(body)
    named = named_patient(raw)  # audited before the rest is judged: a refused report is recorded too
    if named:
        audit_subject(request, named)
    patient_id, order_id = report_target(raw)
    patient = await require_enrolled(registry, patient_id, "subject.reference")
    order = await in_thread(book.get, order_id)
    if order is None or order.patient_id != patient_id:
        raise ApiError(404, "unknown order", ["basedOn[0].reference: no such order of this patient"])
    _, event, id_field, _ = report_event(raw)
    why = report_kind_matches(event.type, order.kind)
    if why:  # a valid report naming an order it cannot answer: a conflict, as for an event's fulfils
        raise ApiError(409, "the order does not wait for this result", [why])
    event = event.model_copy(update={"fulfils": order.action_id})  # the order it names is the one it fulfils
    answer = await accept_event(registry, pathways, book, patient, event, id_field, submitted_by=caller.name,
                                when_field="effectiveDateTime")
    audit_subject(request, patient_id, answer.event_id)
    response.status_code = 200 if answer.duplicate else 202
    return answer


@router.get("/v1/fhir/CodeSystem/{code_system_id}", operation_id="read_code_system",
            summary="One of the project's CodeSystems (FHIR R4)", response_description="The CodeSystem",
            response_class=FhirJSONResponse, responses=errors(401, 404))
async def read_code_system(code_system_id: str) -> FhirJSONResponse:
    """``mri-etiology`` and ``radiograph-measure``: the codes DiagnosticReports come in with."""
    found = code_system(code_system_id)
    if found is None:
        raise ApiError(404, "unknown CodeSystem", [f"code_system_id: expected one of {', '.join(code_system_ids())}"])
    return FhirJSONResponse(found)
