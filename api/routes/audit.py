"""``/v1/audit``: a patient's audit trail as FHIR R4 AuditEvents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.audit import audit_bundle
from api.deps import AUTHENTICATED, AuditDep, requires
from api.fhir_models import AuditBundle
from api.openapi import errors
from api.records import in_thread
from api.routes.fhir import FhirJSONResponse

router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[AUTHENTICATED])


@router.get("", operation_id="list_audit_events", summary="A patient's audit trail as a FHIR R4 Bundle",
            response_description="AuditEvents, oldest first: who read or changed the patient's record, "
                                 "through which route, when, and the outcome",
            response_model=AuditBundle, response_class=FhirJSONResponse,
            dependencies=[requires("audit:read")], responses=errors(401, 403, 422))
async def list_audit_events(audit: AuditDep,
                            patient: Annotated[str, Query(description="The patient id", min_length=1)]
                            ) -> FhirJSONResponse:
    """Every recorded request about ``patient`` (the newest 1000), oldest first. A record
    holds the caller's name, the route template, read or write, the status code and, for an
    event, its id: no clinical values."""
    return FhirJSONResponse(audit_bundle(await in_thread(audit.for_patient, patient)))
