"""An order in the order book and its statuses, defined once.

The activities write orders, the API and its FHIR mapping read them, the CLI filters by status:
all of them use this module. It holds no database code, so the CLI can import it cheaply.
An order is ``active`` until a result fulfils it, someone acknowledges it, or it is cancelled
or stopped; then it is closed for good.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from pathway.guideline import Code

OrderStatus = Literal["active", "completed", "cancelled", "stopped", "acknowledged"]
ORDER_STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)
OPEN: OrderStatus = "active"

# The FHIR request resource an order is written as (the seed names one per action kind).
RequestResource = Literal["ServiceRequest", "MedicationRequest", "CommunicationRequest", "Task"]
REQUEST_RESOURCES: tuple[RequestResource, ...] = get_args(RequestResource)


class Order(BaseModel):
    """One order, referral or task a pathway placed, as the order book holds it."""

    model_config = ConfigDict(frozen=True)

    id: str
    idempotency_key: str
    patient_id: str
    workflow_id: str
    action_id: str
    kind: str  # an action kind of the contract, or escalate_overdue_result
    resource: RequestResource
    status: OrderStatus
    priority: str
    day: float
    title: str
    rationale: str
    citation: str
    details: dict[str, Any]
    codes: list[Code]
    created_at: datetime
    updated_at: datetime
    status_reason: str | None = None
    # Acknowledged by the care team before its task was completed (a result, for imaging): it still waits.
    acknowledged_before_result: bool = False

    @property
    def is_open(self) -> bool:
        """Whether the order still waits (for a result, an acknowledgement, a cancellation)."""
        return self.status == OPEN
