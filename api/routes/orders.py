"""``/v1/orders``: the order book as FHIR (a searchset Bundle, one resource), and acknowledgement."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic.json_schema import SkipJsonSchema

from activities.order_book import OrderBook, PagePosition, position
from activities.order_model import OPEN, ORDER_STATUSES, Order
from api import fhir_orders
from api.deps import AUTHENTICATED, BaseUrl, CallerDep, JsonBody, OrderBookDep, audit_subject, audit_subjects, requires
from api.errors import ApiError
from api.fhir_models import Bundle, OrderResource
from api.inputs import acknowledgement, status_note
from api.openapi import errors, links, request_body
from api.records import focus_types_now, in_listing_thread, in_thread, order_resource, require_order
from api.routes.fhir import FhirJSONResponse

router = APIRouter(prefix="/v1/orders", tags=["fhir"], dependencies=[AUTHENTICATED])

MAX_PAGE = 100  # a Bundle is built and validated whole: its size is capped, deeper results are paged
DEFAULT_PAGE = 50
MAX_OFFSET = 1000  # _offset stays for clients that page by it, as far as is cheap; beyond, `next` links
# A page position: pathway day (Python's float text), creation time (UTC, to the second), order id.
CURSOR = r"^-?[0-9]{1,20}(\.[0-9]{1,24})?(e[+-]?[0-9]{1,3})?~[0-9]{8}T[0-9]{6}~[A-Za-z0-9-]{1,64}$"
ACKNOWLEDGE_EXAMPLE = {"reason": "result reviewed", "author": "dr-0042"}
# Where an order's resource leads: itself, at both its addresses, and its acknowledgement.
ORDER_LINKS = {"get_order": {"order_id": "id"}, "acknowledge_order": {"order_id": "id"},
               "read_resource": {"resource_type": "resourceType", "resource_id": "id"}}


@router.get("", operation_id="list_orders", summary="Orders as a FHIR R4 searchset Bundle", response_model=Bundle,
            response_description="One page of matching orders (ServiceRequest, MedicationRequest, "
                                 "CommunicationRequest, Task)",
            response_class=FhirJSONResponse,
            responses={200: links("/entry/0/resource", **ORDER_LINKS), **errors(401, 403, 422)},
            dependencies=[requires("pathways:read")])
async def list_orders(
        request: Request, book: OrderBookDep, base_url: BaseUrl,
        patient: Annotated[str | SkipJsonSchema[None], Query(description="Only this patient's orders")] = None,
        # Checked below, so that the error names the field as the contract's errors do.
        status: Annotated[str | SkipJsonSchema[None], Query(description="Only orders with this order-book status",
                                                            json_schema_extra={"enum": list(ORDER_STATUSES)})] = None,
        count: Annotated[int, Query(alias="_count", ge=1, le=MAX_PAGE,
                                    description=f"Page size (at most {MAX_PAGE})")] = DEFAULT_PAGE,
        cursor: Annotated[str | SkipJsonSchema[None], Query(
            alias="_cursor", pattern=CURSOR, json_schema_extra={"pattern": CURSOR},
            description="Where the page starts: copy it from the `next` link; opaque, never built by hand")] = None,
        offset: Annotated[int, Query(alias="_offset", ge=0, le=MAX_OFFSET,
                                     description=f"Matches to skip (after `_cursor`, if given; at most {MAX_OFFSET}: "
                                                 "deeper pages come through `next` links)")] = 0) -> FhirJSONResponse:
    """ServiceRequest, MedicationRequest, CommunicationRequest and Task resources, oldest first,
    one page at a time (read page by page from the database), with a ``next`` link while more
    remain."""
    if status is not None and status not in ORDER_STATUSES:
        raise ApiError(422, "invalid request", [f"query.status: expected one of {', '.join(ORDER_STATUSES)}"])
    if patient:
        audit_subject(request, patient)
    query = {k: v for k, v in (("patient", patient), ("status", status)) if v is not None}
    asked = {**query, "_count": count, **({"_cursor": cursor} if cursor else {}),
             **({"_offset": offset} if offset else {})}
    # Reading the page and building (and validating) its Bundle: on the listing threads, off the event loop.
    bundle, patients = await in_listing_thread(_listing, book, base_url, query, asked, count=count,
                                               after=_position(cursor) if cursor else None, skip=offset)
    if not patient:  # a listing across patients reads each patient on the page: one record each
        audit_subjects(request, patients)
    return FhirJSONResponse(bundle)


def _listing(book: OrderBook, base_url: str, query: dict[str, Any], asked: dict[str, Any], *, count: int,
             after: PagePosition | None, skip: int) -> tuple[dict[str, Any], list[str]]:
    """One page of orders as a Bundle: ``count`` rows (and one more, to know whether a next page
    exists) from the database, never the whole match; and the patients the page shows."""
    filters = {"patient_id": query.get("patient"), "status": query.get("status")}
    rows = book.page(**filters, after=after, skip=skip, limit=count + 1)
    page = rows[:count]
    more = {**query, "_count": count, "_cursor": _cursor(page[-1])} if len(rows) > count else None
    bundle = fhir_orders.orders_bundle(page, base_url, total=book.count(**filters), self_params=asked,
                                       next_params=more, focus_types=focus_types_now(book, page))
    return bundle, list(dict.fromkeys(order.patient_id for order in page))


def _cursor(order: Order) -> str:
    """Opaque to clients: where the page after ``order`` starts (its place in listing order)."""
    day, created_at, order_id = position(order)
    return f"{day!r}~{re.sub(r'[^0-9T]', '', created_at[:19])}~{order_id}"


def _position(cursor: str) -> PagePosition:
    """A cursor back to a listing position. Any text the pattern admits is a position (the page
    after it may be empty), so a schema-valid cursor is never refused."""
    day, stamp, order_id = cursor.split("~")
    created_at = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}+00:00"
    return float(day), created_at, order_id


@router.get("/{order_id}", operation_id="get_order", summary="One order as its FHIR resource",
            response_description="The order's FHIR resource",
            response_model=OrderResource, response_class=FhirJSONResponse,
            responses={200: links("", **ORDER_LINKS), **errors(401, 403, 404)},
            dependencies=[requires("pathways:read")])
async def get_order(request: Request, order_id: str, book: OrderBookDep) -> FhirJSONResponse:
    """The order's ServiceRequest, MedicationRequest, CommunicationRequest or Task (the same as
    at its FHIR address)."""
    order = await require_order(book, order_id)
    audit_subject(request, order.patient_id)
    return FhirJSONResponse(await order_resource(book, order))


@router.post("/{order_id}/acknowledge", operation_id="acknowledge_order",
             summary="Acknowledge an open order, or its result",
             response_description="The order's FHIR resource, now acknowledged",
             response_model=OrderResource, response_class=FhirJSONResponse,
             responses={200: links("", **ORDER_LINKS), **errors(401, 403, 404, 409, 413, 422)},
             openapi_extra=request_body("AcknowledgeBody", ACKNOWLEDGE_EXAMPLE, required=False),
             dependencies=[requires("orders:write")])
async def acknowledge(request: Request, order_id: str, body: JsonBody, book: OrderBookDep,
                      caller: CallerDep) -> FhirJSONResponse:
    """Acknowledge an order (optional reason and author): an active one is closed as ``acknowledged``
    (its Task becomes ``accepted``; a result that comes later still fulfils it); one its result
    completed is acknowledged in turn, closing the loop (request, result, acknowledgement; its Task
    stays ``completed``). 409 for any other. Answers the order's resource as it now is."""
    note = status_note(acknowledgement(body))
    order = await require_order(book, order_id)
    audit_subject(request, order.patient_id)
    if order.status == OPEN:
        done = await in_thread(book.set_status, order_id, "acknowledged", note, by=caller.name)
    else:
        done = order.status == "completed" and await in_thread(book.acknowledge_result, order_id, note,
                                                                by=caller.name)
    if not done:
        current = (await require_order(book, order_id)).status
        raise ApiError(409, "order already closed",
                       [f"order: status is {current}; only an active order, or one its result completed, "
                        "can be acknowledged"])
    return FhirJSONResponse(await order_resource(book, await require_order(book, order_id)))
