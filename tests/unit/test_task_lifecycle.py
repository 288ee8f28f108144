"""The fulfilment Task's state machine and the notification signature (pure)."""

from __future__ import annotations

import pytest

from activities.subscriptions import parse_criteria, sign, verify
from activities.task_model import (
    FINAL_TASK_STATUSES,
    TASK_STATUSES,
    TASK_TRANSITIONS,
    illegal_transition,
    order_id_of,
    task_id_of,
)


def test_final_statuses_move_nowhere_and_every_other_status_can_end():
    for status in TASK_STATUSES:
        if status in FINAL_TASK_STATUSES:
            assert TASK_TRANSITIONS[status] == ()
        else:
            assert "cancelled" in TASK_TRANSITIONS[status]


@pytest.mark.parametrize(("current", "wanted", "reason"), [
    ("requested", "accepted", None),
    ("requested", "requested", None),
    ("requested", "in-progress", "status: the task is requested; it can become received, accepted, rejected, "
                                 "cancelled, not in-progress"),
    ("completed", "cancelled", "status: the task is completed, a final status; it cannot become cancelled"),
    ("accepted", "draft", "status: expected one of " + ", ".join(TASK_STATUSES)),
])
def test_an_illegal_move_names_the_current_status(current, wanted, reason):
    assert illegal_transition(current, wanted) == reason


def test_task_ids_name_their_order():
    assert task_id_of("ord-0123") == "task-ord-0123" and order_id_of("task-ord-0123") == "ord-0123"
    assert order_id_of("ord-0123") is None and order_id_of("task-") is None


def test_a_signature_checks_only_with_the_secret_the_body_and_a_recent_time():
    body = b'{"resourceType":"Bundle"}'
    header = sign("s" * 16, body, at=1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify("s" * 16, body, header, now=1_800_000_100)
    assert not verify("t" * 16, body, header, now=1_800_000_100)
    assert not verify("s" * 16, body + b" ", header, now=1_800_000_100)
    assert not verify("s" * 16, body, header, now=1_800_001_000)
    assert not verify("s" * 16, body, "v1=abc", now=1_800_000_000)


def test_criteria_name_an_order_resource_and_at_most_a_patient():
    assert parse_criteria("Task") == ("Task", None)
    assert parse_criteria("ServiceRequest?patient=Patient/pt-1") == ("ServiceRequest", "pt-1")
    for bad in ("Patient", "Task?status=requested", "Task?patient=", "Task?patient=a&patient=b"):
        with pytest.raises(ValueError, match="criteria:"):
            parse_criteria(bad)
