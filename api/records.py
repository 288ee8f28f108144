"""The API's reads and writes of the order book and its registry, off the event loop.

SQLite calls are short but may wait on a lock held by the worker's activities, so each runs in
a thread. These are the lookups several routes share: an enrolled patient, a known order, the
resource types that overdue-result tasks point at.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from activities.order_book import OrderBook
from activities.order_model import Order
from api import fhir_orders
from api.errors import ApiError
from api.registry import EnrollmentRecord, Registry

T = TypeVar("T")
# Order listings (a page of rows, and its FHIR Bundle built and validated: CPU work) run on two
# threads of their own, so that however many are asked for at once, the short lookups every other
# route makes (asyncio's default threads) never queue behind them.
_LISTINGS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vcf-listing")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking database call in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def in_listing_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a large read (a page of orders and its Bundle) on the listing threads (two at a time;
    more wait their turn without holding a thread)."""
    return await asyncio.get_running_loop().run_in_executor(_LISTINGS, functools.partial(fn, *args, **kwargs))


async def require_enrolled(registry: Registry, patient_id: str, field: str = "patient") -> EnrollmentRecord:
    """The patient's enrollment; 404 unless the pathway was started here (``field``: where the
    request named the patient)."""
    record = await in_thread(registry.get, patient_id)
    if record is None or record.started_at is None:
        raise ApiError(404, "unknown patient", [f"{field}: not enrolled (POST /v1/patients first)"])
    return record


async def require_order(book: OrderBook, order_id: str) -> Order:
    """One order; 404 if there is none with this id."""
    order = await in_thread(book.get, order_id)
    if order is None:
        raise ApiError(404, "unknown order", ["order: no such order id"])
    return order


def focus_types_now(book: OrderBook, orders: list[Order]) -> dict[str, str]:
    """Resource types of the orders that overdue-result tasks point at (looked up if not in
    ``orders``); blocking: call it in a thread."""
    known: dict[str, str] = {o.id: o.resource for o in orders}
    targets = {t for t in map(fhir_orders.overdue_order_id, orders) if t}
    for target in targets - known.keys():
        order = book.get(target)
        if order is not None:
            known[target] = order.resource
    return {t: known[t] for t in targets if t in known}


async def focus_types(book: OrderBook, orders: list[Order]) -> dict[str, str]:
    """:func:`focus_types_now`, off the event loop."""
    return await in_thread(focus_types_now, book, orders)


async def order_resource(book: OrderBook, order: Order) -> dict[str, Any]:
    """One order as its FHIR resource (JSON), its focus resolved."""
    focus = (await focus_types(book, [order])).get(fhir_orders.overdue_order_id(order) or "")
    return fhir_orders.resource_json(order, focus)
