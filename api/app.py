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
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.client import Client

from activities.order_book import OrderBook
from activities.order_model import OPEN, ORDER_STATUSES, Order
from api import bodies, fhir, fhir_orders
from api.auth import BearerAuth
from api.errors import ApiError, install_error_handlers
from api.inputs import ack_reason, valid_event
from api.pathways import Pathways
from api.readouts import state_body, timeline_body
from api.registry import Registry, canonical, payload_hash
from pathway.contract import ContractError, Event, parse_enrollment
from pathway.guideline import PathwayDefinition, load_definition
from workflows.models import TASK_QUEUE, workflow_id_for

log = logging.getLogger("api")
FHIR_JSON = "application/fhir+json"
MAX_PAGE = 1000


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
    app.state.registry, app.state.pathways, app.state.order_book = registry, pathways, order_book

    @app.middleware("http")
    async def _log_requests(request: Request, call_next):
        started, status = time.perf_counter(), 500  # a request that raises is logged as the 500 it gets
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            # The route template, never the concrete path: patient and order ids stay out of logs.
            log.info("request", extra={"method": request.method, "route": getattr(route, "path", "unmatched"),
                                       "status": status,
                                       "duration_ms": round((time.perf_counter() - started) * 1000, 1)})

    install_error_handlers(app)  # after the other middleware: its catch-all must be outermost

    async def db(fn, *args, **kwargs):
        # SQLite calls are short but may wait on a lock held by the worker's activities.
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def enrolled(patient_id: str):
        record = await db(registry.get, patient_id)
        if record is None or record.started_at is None:
            raise ApiError(404, "unknown patient", ["patient: not enrolled (POST /v1/patients first)"])
        return record

    async def accept_event(patient_id: str, event: Event, id_field: str = "event_id") -> JSONResponse:
        # An id of our own makes a retried signal harmless: the workflow dedupes on it.
        event_id = event.event_id or f"api-{uuid.uuid4().hex}"
        receipt = {"accepted": True, "patient_id": patient_id, "event_id": event_id, "type": event.type,
                   "state_url": f"/v1/patients/{patient_id}"}
        payload = event.model_dump(mode="json", exclude_none=True) | {"event_id": event_id}
        # Claim the id before signalling, so that concurrent retries send it once.
        claim = await db(registry.claim_event, patient_id, event_id, event.type, payload_hash(payload))
        if claim == "same":
            return JSONResponse({**receipt, "duplicate": True}, status_code=200)
        if claim == "different":
            raise ApiError(409, "event_id already used", [f"{id_field}: already used for a different event"])
        try:
            await pathways.ensure_open(patient_id)
            await pathways.send_event(patient_id, payload)
        except BaseException:
            await asyncio.shield(db(registry.release_event, patient_id, event_id))
            raise
        log.info("event accepted", extra={"event_type": event.type})
        return JSONResponse({**receipt, "duplicate": False}, status_code=202)

    async def focus_types(orders: list[Order]) -> dict[str, str]:
        """Resource types of the orders that overdue-result tasks point at."""
        known: dict[str, str] = {o.id: o.resource for o in orders}
        targets = {t for t in map(fhir_orders.overdue_order_id, orders) if t}
        for target in targets - known.keys():
            found = await db(order_book.get, target)
            if found is not None:
                known[target] = found.resource
        return {t: known[t] for t in targets if t in known}

    async def order_json(order: Order) -> JSONResponse:
        resource = fhir_orders.order_resource(order, (await focus_types([order])).get(
            fhir_orders.overdue_order_id(order) or ""))
        return JSONResponse(fhir.dump(resource), media_type=FHIR_JSON)

    async def known_order(order_id: str) -> Order:
        order = await db(order_book.get, order_id)
        if order is None:
            raise ApiError(404, "unknown order", ["order: no such order id"])
        return order

    @app.get("/healthz", tags=["meta"], summary="Liveness (no auth)")
    async def healthz() -> dict[str, bool]:
        """Answers while the process runs; says nothing about Temporal."""
        return {"ok": True}

    @app.post("/v1/patients", tags=["patients"], dependencies=[auth], status_code=201,
              summary="Enroll a patient (starts the pathway)", responses=_errors(401, 409, 413, 422, 503),
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
        workflow_id = workflow_id_for(enrollment.id)
        record = await db(registry.claim, enrollment.id, workflow_id, body)
        if record.body != body:
            raise ApiError(409, "patient already enrolled with different data",
                           ["id: already enrolled; the enrollment cannot be changed (send events instead)"])
        started = False
        if record.started_at is None:
            try:
                started = await pathways.start(enrollment)
            except BaseException:
                # Not started: free the id, so that a corrected enrollment is not refused as a conflict.
                await asyncio.shield(db(registry.release, enrollment.id))
                raise
            await db(registry.mark_started, enrollment.id, workflow_id, body)
        answer = {"patient_id": enrollment.id, "workflow_id": workflow_id_for(enrollment.id),
                  "guideline_version": definition.version, "created": started,
                  "state_url": f"/v1/patients/{enrollment.id}"}
        return JSONResponse(answer, status_code=201 if started else 200,
                            headers={"Location": f"/v1/patients/{enrollment.id}"})

    @app.post("/v1/patients/{patient_id}/events", tags=["patients"], dependencies=[auth], status_code=202,
              summary="Submit one contract event", responses=_errors(401, 404, 409, 413, 422, 503),
              openapi_extra=bodies.request_body(bodies.EVENT_SCHEMA, {"type": "pain", "nrs": 6, "event_id": "pain-0001"}))
    async def post_event(patient_id: str, request: Request) -> JSONResponse:
        """202 once the event is durably held (applied as soon as a worker runs); 200 for an
        event_id already accepted (applied once); 409 if the pathway has ended."""
        await enrolled(patient_id)
        return await accept_event(patient_id, valid_event(await bodies.json_body(request)))

    @app.post("/v1/fhir/Observation", tags=["fhir"], dependencies=[auth], status_code=202,
              summary="Submit a FHIR R4 Observation (pain NRS or DXA T-score)",
              responses=_errors(401, 404, 409, 413, 422, 503),
              openapi_extra=bodies.request_body({"type": "object"}, bodies.OBSERVATION_EXAMPLE, FHIR_JSON))
    async def post_observation(request: Request) -> JSONResponse:
        """LOINC 72514-3 (valueInteger 0-10) becomes a ``pain`` event, LOINC 38267-1
        (valueQuantity) a ``dxa`` event; ``Observation.id`` (or its first identifier) is the
        event_id, ``effectiveDateTime`` the observed_at."""
        patient_id, raw, names = fhir.observation_to_event(await bodies.json_body(request))
        event = valid_event(raw, names)
        await enrolled(patient_id)
        return await accept_event(patient_id, event, names["event_id"])

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
    async def list_orders(request: Request, patient: str | None = None, status: str | None = None,
                          count: int = Query(100, alias="_count", ge=1, le=MAX_PAGE),
                          offset: int = Query(0, alias="_offset", ge=0)) -> JSONResponse:
        """ServiceRequest, MedicationRequest, CommunicationRequest and Task resources, filtered by
        ``patient`` (pseudonymous id) and ``status`` (order-book status: active, completed,
        cancelled, stopped, acknowledged); ``_count`` per page (default 100, at most 1000) from
        ``_offset``, with a ``next`` link while more remain."""
        if status is not None and status not in ORDER_STATUSES:
            raise ApiError(422, "invalid query", [f"status: expected one of {', '.join(ORDER_STATUSES)}"])
        orders = await db(order_book.list, patient_id=patient, status=status)
        page = orders[offset:offset + count]
        query = {k: v for k, v in (("patient", patient), ("status", status)) if v is not None}
        # Building and validating a large Bundle is CPU work: keep it off the event loop.
        bundle = await asyncio.to_thread(fhir_orders.orders_bundle, page, str(request.base_url), total=len(orders),
                                         offset=offset, count=count, query=query, focus_types=await focus_types(page))
        return JSONResponse(bundle, media_type=FHIR_JSON)

    @app.get("/v1/orders/{order_id}", tags=["fhir"], dependencies=[auth], summary="One order as its FHIR resource",
             responses=_errors(401, 404))
    async def get_order(order_id: str) -> JSONResponse:
        """The order's ServiceRequest, MedicationRequest, CommunicationRequest or Task."""
        return await order_json(await known_order(order_id))

    @app.get("/v1/fhir/{resource_type}/{resource_id}", tags=["fhir"], dependencies=[auth],
             summary="One order's FHIR resource at its FHIR address", responses=_errors(401, 404))
    async def read_resource(resource_type: str, resource_id: str) -> JSONResponse:
        """FHIR read of an order's resource (``ServiceRequest``, ``MedicationRequest``,
        ``CommunicationRequest``, ``Task``): what Bundle ``fullUrl`` and CarePlan references point at.
        404 unless an order of that id has that resource type."""
        order = await db(order_book.get, resource_id) if resource_type in fhir_orders.MODELS else None
        if order is None or order.resource != resource_type:
            raise ApiError(404, "unknown order", [f"{resource_type}: no such resource id"
                                                  if resource_type in fhir_orders.MODELS else
                                                  f"resource_type: expected one of {', '.join(fhir_orders.MODELS)}"])
        return await order_json(order)

    @app.post("/v1/orders/{order_id}/acknowledge", tags=["fhir"], dependencies=[auth],
              summary="Acknowledge (close) an open order", responses=_errors(401, 404, 409, 413, 422),
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                  "schema": {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 500},
                                                              "author": {"type": "string", "maxLength": 200}},
                             "additionalProperties": False},
                  "example": {"reason": "result reviewed", "author": "dr-0042"}}}}})
    async def acknowledge(order_id: str, request: Request) -> JSONResponse:
        """Close an active order as acknowledged; 409 if it is already closed."""
        note = ack_reason(await bodies.json_body(request, required=False))
        order = await known_order(order_id)
        if order.status != OPEN or not await db(order_book.set_status, order_id, "acknowledged", note):
            current = (await db(order_book.get, order_id)).status
            raise ApiError(409, "order already closed", [f"order: status is {current}; only active orders can be acknowledged"])
        return await order_json(await known_order(order_id))

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

