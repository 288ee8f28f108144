"""A rest-hook notification: one change of one order as a FHIR R4 Bundle.

A ``history`` Bundle holding the order's request resource and its fulfilment Task as the change
left them; ``identifier`` carries the subscription and the event number (``{sub id}/{n}``), the
same number as the ``X-VCF-Event-Number`` header, so a receiver can de-duplicate.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle

from activities.order_book import OrderBook, OrderChange, TaskState
from activities.order_model import Order
from activities.task_model import task_id_of
from api import fhir_orders, fhir_tasks
from api.fhir import dump
from api.records import focus_types_now

EVENT_SYSTEM = "urn:vcf-pathway:subscription-event"


def notification(book: OrderBook, order: Order, change: OrderChange, *, subscription_id: str, event_number: int,
                 base_url: str, sent_at: str) -> dict[str, Any]:
    """The Bundle for notification ``event_number`` of a subscription: ``order`` and its Task as
    ``change`` left them (a later change is a later notification)."""
    order = order.model_copy(update={"status": change.order_status, "acknowledged_before_result":
                                      change.order_status == "acknowledged" and change.task_status != "completed"})
    task = TaskState(order.id, order.patient_id, change.task_status, change.order_status,  # type: ignore[arg-type]
                     change.version, change.changed_at, change.business_status)
    focus = focus_types_now(book, [order]).get(fhir_orders.overdue_order_id(order) or "")
    done = {"status": "200", "lastModified": change.changed_at}  # a history Bundle's entries each say (bdl-4)
    body = {
        "resourceType": "Bundle", "type": "history", "timestamp": sent_at,
        "identifier": {"system": EVENT_SYSTEM, "value": f"{subscription_id}/{event_number}"},
        "entry": [
            {"fullUrl": fhir_orders.resource_url(base_url, order), "resource": fhir_orders.resource_body(order, focus),
             "request": {"method": "PUT", "url": f"{order.resource}/{order.id}"}, "response": done},
            {"fullUrl": f"{base_url}v1/fhir/Task/{task_id_of(order.id)}",
             "resource": fhir_tasks.task_body(order, task),
             "request": {"method": "PUT", "url": f"Task/{task_id_of(order.id)}"}, "response": done},
        ],
    }
    return dump(Bundle.model_validate(body))
