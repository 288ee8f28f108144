"""What the routes need, declared once: each as an ``Annotated`` type a route names as a parameter.

``create_app`` puts one :class:`Services` on ``app.state``; the providers below read it, so a
route's signature lists everything it touches (and tests can build an app over any of them).
Every ``/v1`` router depends on :data:`AUTHENTICATED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from activities.order_book import OrderBook
from api.audit import AuditTrail
from api.auth import BearerAuth, Caller
from api.bodies import json_body
from api.errors import ApiError
from api.load import Load
from api.pathways import Pathways
from api.records import require_enrolled
from api.registry import EnrollmentRecord, Registry
from pathway.guideline import PathwayDefinition


@dataclass(frozen=True)
class Services:
    """The API's collaborators: Temporal (through the pathways gateway), the database, the
    guideline definition, the bearer tokens."""

    pathways: Pathways
    order_book: OrderBook
    registry: Registry
    definition: PathwayDefinition
    auth: BearerAuth
    load: Load
    audit: AuditTrail
    public_url: str = "http://127.0.0.1:8000/"


def _services(request: Request) -> Services:
    return request.app.state.services


def _pathways(request: Request) -> Pathways:
    return _services(request).pathways


def _order_book(request: Request) -> OrderBook:
    return _services(request).order_book


def _registry(request: Request) -> Registry:
    return _services(request).registry


def _audit(request: Request) -> AuditTrail:
    return _services(request).audit


def _definition(request: Request) -> PathwayDefinition:
    return _services(request).definition


def _base_url(request: Request) -> str:
    # Configured, never read from the request: a Host (or X-Forwarded-Host) header would otherwise
    # decide where the links in an answer send the client, and its token with it.
    return _services(request).public_url


PathwaysDep = Annotated[Pathways, Depends(_pathways)]
OrderBookDep = Annotated[OrderBook, Depends(_order_book)]
RegistryDep = Annotated[Registry, Depends(_registry)]
AuditDep = Annotated[AuditTrail, Depends(_audit)]
DefinitionDep = Annotated[PathwayDefinition, Depends(_definition)]
BaseUrl = Annotated[str, Depends(_base_url)]
"""The API's public base URL (``VCF_API_PUBLIC_URL``, ending with ``/``), for absolute links in FHIR answers."""
JsonBody = Annotated[Any, Depends(json_body)]
"""The request body as JSON (capped), or ``NO_BODY``."""

# Declares the bearer scheme on /docs; the check itself (and its error wording) is ours.
_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="`Authorization: Bearer <token>`; tokens come from the API's configuration.")


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""The bearer credentials presented (None without any), for a dependency that decides when to check them."""


async def authenticated_caller(request: Request, credentials: BearerCredentials) -> Caller:
    """The caller behind a valid bearer token; 401 otherwise, and 400 for two ``Authorization``
    headers (a proxy and the API could each read a different one)."""
    if len(request.headers.getlist("authorization")) > 1:
        raise ApiError(400, "bad request", ["Authorization: given more than once; send one header"])
    caller = await _services(request).auth.authenticate(credentials.credentials if credentials else None)
    request.state.caller = caller  # for the audit trail (api.app.audit_requests)
    return caller


CallerDep = Annotated[Caller, Depends(authenticated_caller)]
"""The caller, for a route that needs to know who calls."""
AUTHENTICATED = Depends(authenticated_caller)
"""Every /v1 router's dependency: 401 unless a configured bearer token comes with the request."""


async def enrolled_patient(patient_id: str, registry: RegistryDep) -> EnrollmentRecord:
    """The patient named in the path; 404 unless enrolled here."""
    return await require_enrolled(registry, patient_id)


EnrolledPatient = Annotated[EnrollmentRecord, Depends(enrolled_patient)]


def requires(scope: str, *alternatives: str) -> Any:
    """A route dependency: 403 naming ``scope`` and the ``alternatives`` unless the caller holds one of
    them (checked after the token, before anything about the patient is looked up)."""
    async def check(caller: CallerDep) -> None:
        caller.require(scope, *alternatives)
    return Depends(check)


def audit_subjects(request: Request, patient_ids: list[str]) -> None:
    """Name the patients a listing across patients showed, for one audit record each (a read of each)."""
    request.state.audit_patients = patient_ids


def audit_subject(request: Request, patient_id: str, event_id: str | None = None) -> None:
    """Name the patient (and event) this request concerns, for its audit record, when the path
    does not (an enrollment, an Observation, an order)."""
    request.state.audit_patient = patient_id
    if event_id is not None:
        request.state.audit_event_id = event_id
