"""The API's reads and writes of the order book and its registry, off the event loop.

SQLite calls are short but may wait on a lock held by the worker's activities, so each runs in
a thread. These are the lookups several routes share: an enrolled patient, a known order, the
resource types that overdue-result tasks point at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from activities.order_book import OrderBook
from activities.order_model import Order
from api import fhir_orders
from api.errors import ApiError
from api.registry import EnrollmentRecord, Registry

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking database call in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def require_enrolled(registry: Registry, patient_id: str) -> EnrollmentRecord:
    """The patient's enrollment; 404 unless the pathway was started here."""
    record = await in_thread(registry.get, patient_id)
    if record is None or record.started_at is None:
        raise ApiError(404, "unknown patient", ["patient: not enrolled (POST /v1/patients first)"])
    return record


async def require_order(book: OrderBook, order_id: str) -> Order:
    """One order; 404 if there is none with this id."""
    order = await in_thread(book.get, order_id)
    if order is None:
        raise ApiError(404, "unknown order", ["order: no such order id"])
    return order


async def focus_types(book: OrderBook, orders: list[Order]) -> dict[str, str]:
    """Resource types of the orders that overdue-result tasks point at (looked up if not in ``orders``)."""
    known: dict[str, str] = {o.id: o.resource for o in orders}
    targets = {t for t in map(fhir_orders.overdue_order_id, orders) if t}
    for target in targets - known.keys():
        order = await in_thread(book.get, target)
        if order is not None:
            known[target] = order.resource
    return {t: known[t] for t in targets if t in known}


async def order_resource(book: OrderBook, order: Order) -> dict[str, Any]:
    """One order as its FHIR resource (JSON), its focus resolved."""
    focus = (await focus_types(book, [order])).get(fhir_orders.overdue_order_id(order) or "")
    return fhir_orders.resource_json(order, focus)
