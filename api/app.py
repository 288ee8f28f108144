"""The FastAPI application: enrollment, events (contract and FHIR), state, CarePlan, orders.

Every route but /docs, /openapi.json and /healthz needs a bearer token. Failures answer with
``{"error": ..., "detail": ["field: reason", ...]}``; bad input is a 4xx, never a 5xx. Logs
carry the route template, status and timing only: no ids from the path, no bodies.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.client import Client

from activities.order_book import CLOSED_STATUSES, OPEN, OrderBook
from api import bodies, fhir
from api.auth import BearerAuth
from api.errors import ApiError, install_error_handlers
from api.pathways import Pathways
from api.readouts import state_body, timeline_body
from api.registry import Registry, canonical
from pathway.contract import ContractError, Event, parse_enrollment, parse_event
from pathway.guideline import PathwayDefinition, load_definition
from workflows.models import TASK_QUEUE, workflow_id_for

log = logging.getLogger("api")
FHIR_JSON = "application/fhir+json"
# The workflow takes reports stamped up to this far ahead of its clock as skew; so does the API.
CLOCK_SKEW = timedelta(minutes=5)
ORDER_STATUSES = (OPEN, *CLOSED_STATUSES)


class ErrorBody(BaseModel):
    """Every failure: a message and ``field: reason`` lines."""

    error: str
    detail: list[str]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "missing or unknown bearer token", 404: "unknown patient or order", 409: "conflict",
            413: "body too large", 422: "invalid input (detail names each field)",
            503: "the workflow service is unavailable"}
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


def create_app(*, client: Client, order_book: OrderBook, tokens: set[str], task_queue: str = TASK_QUEUE,
               definition: PathwayDefinition | None = None, query_timeout: float = 3.0,
               rpc_timeout: float = 10.0) -> FastAPI:
    """The API over a Temporal client and the order book (the registry shares its database file).

    ``query_timeout`` bounds a wait for a worker to answer a query before the answer falls back
    to what can be read without one.
    """
    definition = definition or load_definition()
    registry = Registry(order_book.path)
    pathways = Pathways(client, task_queue, definition, rpc_timeout=rpc_timeout, query_timeout=query_timeout)
    auth = Depends(BearerAuth(tokens))
    app = FastAPI(title="VCF care pathway API", version="1.0",
                  description="One durable Temporal workflow per patient with an osteoporotic vertebral "
                              "compression fracture. Authenticate with `Authorization: Bearer <token>`.")
    install_error_handlers(app)
    app.state.registry, app.state.pathways, app.state.order_book = registry, pathways, order_book

    @app.middleware("http")
    async def _log_requests(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template, never the concrete path: patient and order ids stay out of logs.
        log.info("request", extra={"method": request.method, "route": getattr(route, "path", "unmatched"),
                                   "status": response.status_code,
                                   "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        return response

    async def db(fn, *args, **kwargs):
        # SQLite calls are short but may wait on a lock held by the worker's activities.
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def enrolled(patient_id: str):
        record = await db(registry.get, patient_id)
        if record is None or record.started_at is None:
            raise ApiError(404, "unknown patient", ["patient: not enrolled (POST /v1/patients first)"])
        return record

    async def accept_event(patient_id: str, event: Event) -> JSONResponse:
        # An id of our own makes a retried signal harmless: the workflow dedupes on it.
        event_id = event.event_id or f"api-{uuid.uuid4().hex}"
        receipt = {"accepted": True, "patient_id": patient_id, "event_id": event_id, "type": event.type,
                   "state_url": f"/v1/patients/{patient_id}"}
        if await db(registry.seen, patient_id, event_id):
            return JSONResponse({**receipt, "duplicate": True}, status_code=200)
        await pathways.ensure_open(patient_id)
        payload = event.model_dump(mode="json", exclude_none=True) | {"event_id": event_id}
        await pathways.send_event(patient_id, payload)
        await db(registry.remember, patient_id, event_id, event.type)
        log.info("event accepted", extra={"event_type": event.type})
        return JSONResponse({**receipt, "duplicate": False}, status_code=202)

    @app.get("/healthz", tags=["meta"], summary="Liveness (no auth)")
    async def healthz() -> dict[str, bool]:
        """Answers while the process runs; says nothing about Temporal."""
        return {"ok": True}

    @app.post("/v1/patients", tags=["patients"], dependencies=[auth], status_code=201,
              summary="Enroll a patient (starts the pathway)", responses=_errors(401, 409, 422, 503),
              openapi_extra=bodies.request_body(bodies.ENROLLMENT_SCHEMA, {
                  "id": "pt-0001", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8,
                  "onset_days_before_enrollment": 3, "red_flags": []}))
    async def enroll(request: Request) -> JSONResponse:
        """201 when the pathway starts; 200 for the same enrollment again; 409 for the same id
        with different data."""
        try:
            enrollment = parse_enrollment(await bodies.json_body(request))
        except ContractError as exc:
            raise ApiError(422, "invalid enrollment", exc.errors) from None
        body = canonical(enrollment.model_dump(mode="json"))
        record, _ = await db(registry.claim, enrollment.id, workflow_id_for(enrollment.id), body)
        if record.body != body:
            raise ApiError(409, "patient already enrolled with different data",
                           ["id: already enrolled; the enrollment cannot be changed (send events instead)"])
        started = False
        if record.started_at is None:
            started = await pathways.start(enrollment)
            await db(registry.mark_started, enrollment.id)
        answer = {"patient_id": enrollment.id, "workflow_id": workflow_id_for(enrollment.id),
                  "guideline_version": definition.version, "created": started,
                  "state_url": f"/v1/patients/{enrollment.id}"}
        return JSONResponse(answer, status_code=201 if started else 200,
                            headers={"Location": f"/v1/patients/{enrollment.id}"})

    @app.post("/v1/patients/{patient_id}/events", tags=["patients"], dependencies=[auth], status_code=202,
              summary="Submit one contract event", responses=_errors(401, 404, 409, 422, 503),
              openapi_extra=bodies.request_body(bodies.EVENT_SCHEMA, {"type": "pain", "nrs": 6, "event_id": "pain-0001"}))
    async def post_event(patient_id: str, request: Request) -> JSONResponse:
        """202 once the event is durably held (applied as soon as a worker runs); 200 for an
        event_id already accepted (applied once); 409 if the pathway has ended."""
        await enrolled(patient_id)
        return await accept_event(patient_id, _valid_event(await bodies.json_body(request)))

    @app.post("/v1/fhir/Observation", tags=["fhir"], dependencies=[auth], status_code=202,
              summary="Submit a FHIR R4 Observation (pain NRS or DXA T-score)",
              responses=_errors(401, 404, 409, 422, 503),
              openapi_extra=bodies.request_body({"type": "object"}, bodies.OBSERVATION_EXAMPLE, FHIR_JSON))
    async def post_observation(request: Request) -> JSONResponse:
        """LOINC 72514-3 (valueInteger 0-10) becomes a ``pain`` event, LOINC 38267-1
        (valueQuantity) a ``dxa`` event; ``Observation.id`` (or its first identifier) is the
        event_id, ``effectiveDateTime`` the observed_at."""
        patient_id, raw = fhir.observation_to_event(await bodies.json_body(request))
        event = _valid_event(raw, fhir.OBSERVATION_FIELDS)
        await enrolled(patient_id)
        return await accept_event(patient_id, event)

    @app.get("/v1/patients/{patient_id}", tags=["patients"], dependencies=[auth],
             summary="Where the patient is on the pathway", responses=_errors(401, 404, 503))
    async def get_state(patient_id: str) -> dict[str, Any]:
        """Phase, pathway day, guideline version, latest pain, actions (with rationale and
        citation), pending orders, next review. ``source`` says where it was read from: the
        live workflow, or (no worker answering, or the pathway ended) the workflow history,
        search attributes and order book — then ``live`` is false and ``notes`` say so."""
        record = await enrolled(patient_id)
        view = await pathways.view(patient_id)
        orders = await db(order_book.list, patient_id=patient_id)
        return state_body(record, view, orders, definition)

    @app.get("/v1/patients/{patient_id}/timeline", tags=["patients"], dependencies=[auth],
             summary="Events, actions, notes and rejections in order", responses=_errors(401, 404, 503))
    async def get_timeline(patient_id: str) -> dict[str, Any]:
        """The workflow's timeline; without a worker, the actions from the order book (``live`` false)."""
        record = await enrolled(patient_id)
        entries = await pathways.timeline(patient_id)
        orders = [] if entries is not None else await db(order_book.list, patient_id=patient_id)
        return timeline_body(record, entries, orders, pathways.query_timeout.total_seconds())

    @app.get("/v1/patients/{patient_id}/CarePlan", tags=["fhir"], dependencies=[auth],
             summary="The pathway as a FHIR R4 CarePlan", responses=_errors(401, 404, 503))
    async def get_care_plan(patient_id: str) -> JSONResponse:
        """A CarePlan whose activities reference the patient's orders (see /v1/orders)."""
        record = await enrolled(patient_id)
        view = await pathways.view(patient_id)
        orders = await db(order_book.list, patient_id=patient_id)
        state = state_body(record, view, orders, definition)
        status = "paused" if state["paused"] and state["status"] == "running" else state["status"]
        plan = fhir.care_plan(patient_id=patient_id, status=status, title=definition.title,
                              guideline_version=state["guideline_version"],
                              enrolled_at=state["enrolled_at"], orders=orders, notes=state["notes"])
        return JSONResponse(fhir.dump(plan), media_type=FHIR_JSON)

    @app.get("/v1/orders", tags=["fhir"], dependencies=[auth], summary="Orders as a FHIR R4 searchset Bundle",
             responses=_errors(401, 422))
    async def list_orders(request: Request, patient: str | None = None, status: str | None = None) -> JSONResponse:
        """ServiceRequest, MedicationRequest, CommunicationRequest and Task resources, filtered by
        ``patient`` (pseudonymous id) and ``status`` (order-book status: active, completed,
        cancelled, stopped, acknowledged)."""
        if status is not None and status not in ORDER_STATUSES:
            raise ApiError(422, "invalid query", [f"status: expected one of {', '.join(ORDER_STATUSES)}"])
        orders = await db(order_book.list, patient_id=patient, status=status)
        return JSONResponse(fhir.dump(fhir.orders_bundle(orders, str(request.base_url))), media_type=FHIR_JSON)

    @app.get("/v1/orders/{order_id}", tags=["fhir"], dependencies=[auth], summary="One order as its FHIR resource",
             responses=_errors(401, 404))
    async def get_order(order_id: str) -> JSONResponse:
        """The order's ServiceRequest, MedicationRequest, CommunicationRequest or Task."""
        order = await db(order_book.get, order_id)
        if order is None:
            raise ApiError(404, "unknown order", ["order: no such order id"])
        return JSONResponse(fhir.dump(fhir.order_resource(order)), media_type=FHIR_JSON)

    @app.post("/v1/orders/{order_id}/acknowledge", tags=["fhir"], dependencies=[auth],
              summary="Acknowledge (close) an open order", responses=_errors(401, 404, 409, 422),
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                  "schema": {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 500},
                                                              "author": {"type": "string", "maxLength": 200}},
                             "additionalProperties": False},
                  "example": {"reason": "result reviewed", "author": "dr-0042"}}}}})
    async def acknowledge(order_id: str, request: Request) -> JSONResponse:
        """Close an active order as acknowledged; 409 if it is already closed."""
        note = _ack_reason(await bodies.json_body(request, required=False))
        order = await db(order_book.get, order_id)
        if order is None:
            raise ApiError(404, "unknown order", ["order: no such order id"])
        if order["status"] != OPEN or not await db(order_book.set_status, order_id, "acknowledged", note):
            current = (await db(order_book.get, order_id))["status"]
            raise ApiError(409, "order already closed", [f"order: status is {current}; only active orders can be acknowledged"])
        return JSONResponse(fhir.dump(fhir.order_resource(await db(order_book.get, order_id))), media_type=FHIR_JSON)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(bodies.SCHEMA_DEFS)
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, ops in schema["paths"].items():
                if path.startswith("/v1/"):
                    for op in ops.values():
                        op["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _valid_event(raw: Any, field_names: dict[str, str] | None = None) -> Event:
    """The contract event, or 422 naming the sender's fields."""
    try:
        event = parse_event(raw)
    except ContractError as exc:
        raise ApiError(422, "invalid event", _rename(exc.errors, field_names or {})) from None
    if event.observed_at is not None and event.observed_at > datetime.now(timezone.utc) + CLOCK_SKEW:
        name = (field_names or {}).get("observed_at", "observed_at")
        raise ApiError(422, "invalid event", [f"{name}: is in the future"])
    return event


def _rename(errors: list[str], names: dict[str, str]) -> list[str]:
    """Name the sender's fields (e.g. FHIR ``valueInteger``) instead of the contract's."""
    out = []
    for line in errors:
        field, sep, reason = line.partition(":")
        out.append(f"{names.get(field, field)}{sep}{reason}")
    return out


def _ack_reason(body: Any) -> str:
    if body is None:
        return "acknowledged"
    problems = []
    if not isinstance(body, dict):
        raise ApiError(422, "invalid request", ["body: expected a JSON object with optional reason and author"])
    for key in body:
        if key not in ("reason", "author"):
            problems.append(f"{key}: unknown field")
    for key, limit in (("reason", 500), ("author", 200)):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > limit):
            problems.append(f"{key}: expected a non-empty string of at most {limit} characters")
    if problems:
        raise ApiError(422, "invalid request", problems)
    text = "acknowledged"
    if body.get("author"):
        text += f" by {body['author']}"
    if body.get("reason"):
        text += f": {body['reason']}"
    return text
