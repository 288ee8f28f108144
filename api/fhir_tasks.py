"""Orders as FHIR R4 Tasks with a lifecycle: the fulfilment Task of an order, and a Task update.

Each order has a Task (``task-{order id}``): ``focus`` is the order's request resource, ``for``
the patient, ``status`` its place in FHIR's Task state machine (:mod:`activities.task_model`),
``businessStatus`` the performer's own words, ``lastModified`` the last change and ``meta.versionId``
the version (the ``ETag``, ``W/"n"``). ``PUT`` takes a Task and applies its ``status`` (with
``businessStatus.text`` and ``statusReason.text``); the identity elements must be the task's own.
"""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task

from activities.order_book import OrderChange, TaskState
from activities.order_model import Order
from activities.task_model import TASK_STATUSES, TaskStatus, task_id_of
from api.errors import ApiError
from api.fhir import dump

TASK_CODE = {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill",
             "display": "Fulfill the focal request"}
ETAG = re.compile(r'^(?:W/)?"([0-9]{1,9})"$')
# What a Task update may carry besides what it changes: the task's identity, echoed as read.
_READ_ONLY = ("id", "focus", "for", "intent")


def etag(task: TaskState) -> str:
    """The task's version as a weak ETag, as FHIR servers give it."""
    return f'W/"{task.version}"'


def if_match_version(header: str | None) -> int | None:
    """The version an ``If-Match`` header names (None without one); 412 if it names none."""
    if header is None:
        return None
    found = ETAG.match(header.strip())
    if not found:
        raise ApiError(412, "precondition failed", ['If-Match: expected the ETag of a read, e.g. W/"3"'])
    return int(found.group(1))


def task_body(order: Order, task: TaskState) -> dict[str, Any]:
    """The order's fulfilment Task (FHIR JSON, not yet validated)."""
    body: dict[str, Any] = {
        "resourceType": "Task", "id": task_id_of(order.id),
        "meta": {"versionId": str(task.version), "lastUpdated": task.last_modified},
        "status": task.status, "intent": "order", "code": {"coding": [TASK_CODE]},
        "description": order.title, "focus": {"reference": f"{order.resource}/{order.id}"},
        "for": {"reference": f"Patient/{order.patient_id}"}, "authoredOn": order.created_at.isoformat(),
        "lastModified": task.last_modified, "priority": order.priority if order.priority in
        ("routine", "urgent", "asap", "stat") else "routine",
    }
    if task.business_status:
        body["businessStatus"] = {"text": task.business_status}
    return body


def task_json(order: Order, task: TaskState) -> dict[str, Any]:
    """The order's fulfilment Task as validated FHIR JSON."""
    return dump(Task.model_validate(task_body(order, task)))


def history_bundle(order: Order, changes: list[OrderChange]) -> dict[str, Any]:
    """The task's history (newest first, as FHIR's ``_history``): one Task version per change."""
    entries = []
    for change in reversed(changes):
        state = TaskState(order.id, order.patient_id, change.task_status,  # type: ignore[arg-type]
                          change.order_status, change.version,  # type: ignore[arg-type]
                          change.changed_at, change.business_status)
        resource = task_body(order, state)
        if change.note:
            resource["statusReason"] = {"text": change.note}
        resource["owner"] = {"display": change.changed_by}
        entries.append({"resource": resource, "request": {"method": "PUT", "url": f"Task/{task_id_of(order.id)}"},
                        "response": {"status": "200", "lastModified": change.changed_at}})
    body = {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}
    return dump(Bundle.model_validate(body))


def task_update(raw: Any, order: Order) -> tuple[TaskStatus, str | None, str | None]:
    """A Task update's (status, businessStatus text, statusReason text); 422 naming the element
    that is missing, unknown, or not this task's own."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "Task":
        raise ApiError(422, "invalid Task", ["resourceType: expected 'Task'"])
    own = {"id": task_id_of(order.id), "focus": {"reference": f"{order.resource}/{order.id}"},
           "for": {"reference": f"Patient/{order.patient_id}"}, "intent": "order"}
    for name in _READ_ONLY:
        if name in raw and _reference(raw[name]) != own[name]:
            raise ApiError(422, "invalid Task", [f"{name}: not this task's own (read the Task, change its status)"])
    status = raw.get("status")
    if status not in TASK_STATUSES:
        raise ApiError(422, "invalid Task", [f"status: expected one of {', '.join(TASK_STATUSES)}"])
    return status, _text(raw, "businessStatus"), _text(raw, "statusReason")


def _reference(value: Any) -> Any:
    return {"reference": value.get("reference")} if isinstance(value, dict) and "reference" in value else value


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    text = value.get("text") if isinstance(value, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > 500:
        raise ApiError(422, "invalid Task", [f"{name}.text: expected text (1-500 characters)"])
    return text
