"""``/v1/fhir/Task``: each order's fulfilment Task, read and moved through its lifecycle.

``GET`` answers the Task with its ``ETag``; ``PUT`` (FHIR update) moves it: an illegal move is
409 naming the current status, a stale ``If-Match`` 412. A rejected or failed task is signalled
to the patient's pathway, which decides what it means (:func:`pathway.results.refusal_alert`).
Order Tasks the pathway itself placed (``ord-…``, care-team tasks) are read here too.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request

from activities.order_book import OrderBook, TaskState
from activities.order_model import Order
from activities.orders import RefusalRequest, place_refusal_alert
from activities.task_model import REFUSED_TASK_STATUSES, order_id_of
from api import fhir_tasks
from api.bodies import required
from api.deps import (
    AUTHENTICATED,
    CallerDep,
    JsonBody,
    OrderBookDep,
    PathwaysDep,
    RegistryDep,
    audit_subject,
    requires,
)
from api.errors import ApiError
from api.fhir_models import FHIR_JSON
from api.openapi import errors, request_body
from api.pathways import approx_day
from api.records import in_thread, order_resource
from api.registry import Registry
from api.routes.fhir import FhirJSONResponse
from pathway.results import refusal_alert

log = logging.getLogger("api")
router = APIRouter(tags=["fhir"], dependencies=[AUTHENTICATED])
TASK_EXAMPLE = {"resourceType": "Task", "id": "task-ord-0123456789abcdef0123", "status": "accepted",
                "intent": "order", "businessStatus": {"text": "booked for Tuesday"}}
TASK_SCHEMA = "TaskUpdate"


async def _order_of(book: OrderBook, task_id: str) -> tuple[Order, TaskState]:
    order_id = order_id_of(task_id)
    order = await in_thread(book.get, order_id) if order_id else None
    task = await in_thread(book.task, order.id) if order else None
    if order is None or task is None:
        raise ApiError(404, "unknown Task", ["task_id: no such task (an order's task is task-{order id})"])
    return order, task


def _answer(order: Order, task: TaskState) -> FhirJSONResponse:
    return FhirJSONResponse(fhir_tasks.task_json(order, task), headers={"ETag": fhir_tasks.etag(task)})


@router.get("/v1/fhir/Task/{task_id}", operation_id="read_task", summary="An order's fulfilment Task (FHIR R4)",
            response_description="The Task, with its version as ETag", response_class=FhirJSONResponse,
            responses=errors(401, 403, 404), dependencies=[requires("pathways:read")])
async def read_task(request: Request, task_id: str, book: OrderBookDep) -> FhirJSONResponse:
    """``task-{order id}``: the order's fulfilment Task; an order that is itself a Task (a
    care-team task, ``ord-…``) answers as that order."""
    if order_id_of(task_id) is None:
        order = await in_thread(book.get, task_id)
        if order is None or order.resource != "Task":
            raise ApiError(404, "unknown Task", ["task_id: no such task (an order's task is task-{order id})"])
        audit_subject(request, order.patient_id)
        return FhirJSONResponse(await order_resource(book, order))
    order, task = await _order_of(book, task_id)
    audit_subject(request, order.patient_id)
    return _answer(order, task)


@router.get("/v1/fhir/Task/{task_id}/_history", operation_id="read_task_history",
            summary="Every version of an order's fulfilment Task", response_class=FhirJSONResponse,
            response_description="A history Bundle, newest first", responses=errors(401, 403, 404),
            dependencies=[requires("pathways:read")])
async def read_task_history(request: Request, task_id: str, book: OrderBookDep) -> FhirJSONResponse:
    """Each change: status, who made it (``owner.display``: a credential name, or ``pathway``), why."""
    order, _ = await _order_of(book, task_id)
    audit_subject(request, order.patient_id)
    return FhirJSONResponse(fhir_tasks.history_bundle(order, await in_thread(book.task_history, order.id)))


@router.put("/v1/fhir/Task/{task_id}", operation_id="update_task", summary="Move an order's Task (FHIR update)",
            response_description="The Task as it now is, with its new ETag", response_class=FhirJSONResponse,
            openapi_extra=request_body(TASK_SCHEMA, TASK_EXAMPLE, FHIR_JSON, "application/json"),
            responses=errors(401, 403, 404, 409, 412, 413, 422, 503), dependencies=[requires("orders:write")])
async def update_task(request: Request, task_id: str, body: JsonBody, caller: CallerDep, book: OrderBookDep,
                      pathways: PathwaysDep, registry: RegistryDep,
                      if_match: Annotated[str | None, Header(description='The ETag read (W/"n"); a stale one is '
                                                                          "412")] = None) -> FhirJSONResponse:
    """Legal moves only (FHIR's Task state machine; 409 names the current status); with
    ``If-Match``, only from the version read (412 otherwise). ``completed`` completes the order,
    ``rejected``/``failed``/``cancelled`` cancel it; a rejected or failed task is told to the pathway."""
    order, _ = await _order_of(book, task_id)
    audit_subject(request, order.patient_id)
    status, business, reason = fhir_tasks.task_update(required(body), order)
    version = fhir_tasks.if_match_version(if_match)
    move = await in_thread(book.move_task, order.id, status, if_version=version, by=caller.name,
                           note=reason, business_status=business)
    if move.outcome == "stale" and move.task:
        raise ApiError(412, "precondition failed", [f"If-Match: the task is at version {move.task.version}; "
                                                    "read it again"], headers={"ETag": fhir_tasks.etag(move.task)})
    if move.outcome == "illegal" and move.task:
        raise ApiError(409, "illegal Task transition", [move.reason or f"status: the task is {move.task.status}"],
                       headers={"ETag": fhir_tasks.etag(move.task)})
    if move.task is None:
        raise ApiError(404, "unknown Task", ["task_id: no such task"])
    if move.task.status in REFUSED_TASK_STATUSES:
        # Sent again on a repeated PUT (the pathway acts once per order): a lost signal is retried.
        told = await pathways.send_task_refused(order.patient_id, {
            "order_id": order.id, "action_id": order.action_id, "kind": order.kind, "status": move.task.status,
            "reason": reason or business or ""})
        if not told:  # the pathway has ended: the care team owns its orders, and hears of this one directly
            await _alert_after_end(book, registry, order, move.task.status, reason or business or "")
    log.info("task moved", extra={"task_status": move.task.status, "outcome": move.outcome})
    return _answer(order, move.task)


async def _alert_after_end(book: OrderBook, registry: Registry, order: Order, status: str, reason: str) -> None:
    """The care-team task a refused imaging order or referral calls for (:func:`pathway.results.refusal_alert`),
    placed by the API once the pathway has ended: the same task, once per order, as the pathway places."""
    record = await in_thread(registry.get, order.patient_id)
    day = (approx_day(record.started_at) if record else None) or order.day
    alert = refusal_alert(order.kind, status, reason, day, order.title)
    if alert is None:
        return
    await in_thread(place_refusal_alert, book, RefusalRequest(
        workflow_id=order.workflow_id, patient_id=order.patient_id, order_id=order.id, order_action_id=order.action_id,
        task_status=status, day=day, title=alert.title, citation=alert.citation,
        rationale=f"{alert.rationale} The pathway had already ended: the care team owns its orders."))
    log.info("refused order alerted after the end", extra={"task_status": status})
