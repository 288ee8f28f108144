"""The fulfilment Task of an order: its FHIR statuses and the moves between them, defined once.

Every order in the order book has a Task (``focus`` the order, ``for`` the patient) whose status
follows FHIR's Task state machine. Care systems move it (``PUT /v1/fhir/Task/{id}``); the order
book moves it too: a result completes it, a cancellation cancels it, ``acknowledge`` accepts it.
Pure: no database code, so the API, the activities and the tests share it.
"""

from __future__ import annotations

from typing import Literal, get_args

from activities.order_model import OrderStatus

TaskStatus = Literal["requested", "received", "accepted", "rejected", "in-progress", "on-hold", "completed",
                     "failed", "cancelled"]
TASK_STATUSES: tuple[TaskStatus, ...] = get_args(TaskStatus)
FINAL_TASK_STATUSES: tuple[TaskStatus, ...] = ("rejected", "completed", "failed", "cancelled")
# The performer's refusals the pathway hears about (an imaging or referral order that will not happen).
REFUSED_TASK_STATUSES: tuple[TaskStatus, ...] = ("rejected", "failed")

# FHIR R4 Task state machine (workflow module), as a care system may drive it. A result or a
# cancellation by the pathway closes a task from any open status (the order book does that).
TASK_TRANSITIONS: dict[TaskStatus, tuple[TaskStatus, ...]] = {
    "requested": ("received", "accepted", "rejected", "cancelled"),
    "received": ("accepted", "rejected", "cancelled"),
    "accepted": ("in-progress", "on-hold", "failed", "cancelled"),
    "in-progress": ("on-hold", "completed", "failed", "cancelled"),
    "on-hold": ("in-progress", "failed", "cancelled"),
    "rejected": (), "completed": (), "failed": (), "cancelled": (),
}

# The order-book status an order takes when its task is moved there by a care system (None: unchanged).
ORDER_STATUS_AFTER: dict[TaskStatus, OrderStatus | None] = {
    "requested": None, "received": None, "accepted": None, "in-progress": None, "on-hold": None,
    "completed": "completed", "rejected": "cancelled", "failed": "cancelled", "cancelled": "cancelled",
}

# The task status the order book's own moves give (orders written before tasks existed start here).
TASK_STATUS_OF_ORDER: dict[OrderStatus, TaskStatus] = {
    "active": "requested", "acknowledged": "accepted", "completed": "completed", "cancelled": "cancelled",
    "stopped": "cancelled",
}


def illegal_transition(current: TaskStatus, wanted: str) -> str | None:
    """Why a task in ``current`` cannot move to ``wanted`` (None if it can, or if nothing changes)."""
    if wanted == current:
        return None
    if wanted not in TASK_STATUSES:
        return f"status: expected one of {', '.join(TASK_STATUSES)}"
    allowed = TASK_TRANSITIONS[current]
    if wanted in allowed:
        return None
    if not allowed:
        return f"status: the task is {current}, a final status; it cannot become {wanted}"
    return f"status: the task is {current}; it can become {', '.join(allowed)}, not {wanted}"


def task_id_of(order_id: str) -> str:
    """The fulfilment Task's id of an order (``ord-x`` -> ``task-ord-x``: no PHI, as random as the order's)."""
    return "task-" + order_id


def order_id_of(task_id: str) -> str | None:
    """The order a fulfilment Task id names (None if it is not one)."""
    return task_id.removeprefix("task-") if task_id.startswith("task-") and len(task_id) > 5 else None
