"""``/v1/orders``: the order book as FHIR (a searchset Bundle, one resource), and acknowledgement."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic.json_schema import SkipJsonSchema

from activities.order_model import OPEN, ORDER_STATUSES
from api import fhir_orders
from api.deps import AUTHENTICATED, BaseUrl, JsonBody, OrderBookDep
from api.errors import ApiError
from api.fhir_models import Bundle, OrderResource
from api.inputs import acknowledgement, status_note
from api.openapi import errors, links, request_body
from api.records import focus_types, in_thread, order_resource, require_order
from api.routes.fhir import FhirJSONResponse

router = APIRouter(prefix="/v1/orders", tags=["fhir"], dependencies=[AUTHENTICATED])

MAX_PAGE = 1000
ACKNOWLEDGE_EXAMPLE = {"reason": "result reviewed", "author": "dr-0042"}
# Where an order's resource leads: itself, at both its addresses, and its acknowledgement.
ORDER_LINKS = {"get_order": {"order_id": "id"}, "acknowledge_order": {"order_id": "id"},
               "read_resource": {"resource_type": "resourceType", "resource_id": "id"}}


@router.get("", operation_id="list_orders", summary="Orders as a FHIR R4 searchset Bundle", response_model=Bundle,
            response_description="One page of matching orders (ServiceRequest, MedicationRequest, "
                                 "CommunicationRequest, Task)",
            response_class=FhirJSONResponse,
            responses={200: links("/entry/0/resource", **ORDER_LINKS), **errors(401, 422)})
async def list_orders(
        book: OrderBookDep, base_url: BaseUrl,
        patient: Annotated[str | SkipJsonSchema[None], Query(description="Only this patient's orders")] = None,
        # Checked below, so that the error names the field as the contract's errors do.
        status: Annotated[str | SkipJsonSchema[None], Query(description="Only orders with this order-book status",
                                                            json_schema_extra={"enum": list(ORDER_STATUSES)})] = None,
        count: Annotated[int, Query(alias="_count", ge=1, le=MAX_PAGE, description="Page size")] = 100,
        offset: Annotated[int, Query(alias="_offset", ge=0, description="Matches to skip")] = 0) -> FhirJSONResponse:
    """ServiceRequest, MedicationRequest, CommunicationRequest and Task resources, oldest first,
    with a ``next`` link while more remain."""
    if status is not None and status not in ORDER_STATUSES:
        raise ApiError(422, "invalid query", [f"status: expected one of {', '.join(ORDER_STATUSES)}"])
    orders = await in_thread(book.list, patient_id=patient, status=status)
    page = orders[offset:offset + count]
    query = {k: v for k, v in (("patient", patient), ("status", status)) if v is not None}
    # Building and validating a large Bundle is CPU work: keep it off the event loop.
    bundle = await asyncio.to_thread(fhir_orders.orders_bundle, page, base_url, total=len(orders), offset=offset,
                                     count=count, query=query, focus_types=await focus_types(book, page))
    return FhirJSONResponse(bundle)


@router.get("/{order_id}", operation_id="get_order", summary="One order as its FHIR resource",
            response_description="The order's FHIR resource",
            response_model=OrderResource, response_class=FhirJSONResponse,
            responses={200: links("", **ORDER_LINKS), **errors(401, 404)})
async def get_order(order_id: str, book: OrderBookDep) -> FhirJSONResponse:
    """The order's ServiceRequest, MedicationRequest, CommunicationRequest or Task (the same as
    at its FHIR address)."""
    return FhirJSONResponse(await order_resource(book, await require_order(book, order_id)))


@router.post("/{order_id}/acknowledge", operation_id="acknowledge_order", summary="Acknowledge (close) an open order",
             response_description="The order's FHIR resource, now acknowledged",
             response_model=OrderResource, response_class=FhirJSONResponse,
             responses={200: links("", **ORDER_LINKS), **errors(401, 404, 409, 413, 422)},
             openapi_extra=request_body("AcknowledgeBody", ACKNOWLEDGE_EXAMPLE, required=False))
async def acknowledge(order_id: str, body: JsonBody, book: OrderBookDep) -> FhirJSONResponse:
    """Close an active order as ``acknowledged`` (optional reason and author); 409 if it is
    already closed. Answers the order's resource as it now is."""
    note = status_note(acknowledgement(body))
    order = await require_order(book, order_id)
    if order.status != OPEN or not await in_thread(book.set_status, order_id, "acknowledged", note):
        current = (await require_order(book, order_id)).status
        raise ApiError(409, "order already closed",
                       [f"order: status is {current}; only active orders can be acknowledged"])
    return FhirJSONResponse(await order_resource(book, await require_order(book, order_id)))
