"""Closed-loop results: which imaging orders still wait for a result, and which are overdue.

Pure. A result fulfils the oldest open order it answers (first in, first out), as the order
book does. An action id starts with its kind (``order_radiograph:day-14``). From vcf-1.2 an
urgent order (the enrollment MRI with a red flag) is overdue sooner than a routine one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pathway.contract import DxaEvent, MriEvent, RadiographEvent
from pathway.facts import PatientFacts, check_after, more_than
from pathway.guideline import PathwayDefinition, Rule

RESULT_EVENT_FOR: dict[str, type[MriEvent | RadiographEvent | DxaEvent]] = {
    "order_mri": MriEvent,
    "order_radiograph": RadiographEvent,
    "order_adjacent_fracture_screening": RadiographEvent,
    "order_dxa": DxaEvent,
}


@dataclass(frozen=True)
class OpenOrder:
    """An imaging order without its result yet."""

    action_id: str
    kind: str
    day: float


def open_orders(facts: PatientFacts) -> list[OpenOrder]:
    """Imaging and DXA orders that no result has answered yet."""
    still_open: list[OpenOrder] = []
    for result_type in dict.fromkeys(RESULT_EVENT_FOR.values()):
        orders = sorted((day, action_id) for action_id, day in facts.taken.items()
                        if RESULT_EVENT_FOR.get(action_id.split(":")[0]) is result_type)
        results = [day for day, _ in facts.of(result_type)]
        waiting: list[tuple[float, str]] = []
        queue = list(orders)
        for result_day in results:
            while queue and queue[0][0] <= result_day:
                waiting.append(queue.pop(0))
            if waiting:
                waiting.pop(0)
        still_open += [OpenOrder(a, a.split(":")[0], d) for d, a in waiting + queue]
    return sorted(still_open, key=lambda o: (o.day, o.action_id))


def overdue_limit(defn: PathwayDefinition, facts: PatientFacts, order: OpenOrder) -> Rule | None:
    """How long an open order may wait for its result (None if the version sets no limit)."""
    urgent = order.action_id == "order_mri" and any(f in defn.urgent_mri_red_flags for f in facts.enrollment.red_flags)
    if urgent and defn.safety is not None:
        return defn.safety.rules.result_overdue_urgent_days
    return defn.rules.result_overdue_days


def overdue_orders(defn: PathwayDefinition, facts: PatientFacts, now: float) -> list[tuple[OpenOrder, Rule]]:
    """Open orders placed more than their overdue limit ago, each with the limit it broke."""
    found = []
    for order in open_orders(facts):
        rule = overdue_limit(defn, facts, order)
        if rule is not None and more_than(now - order.day, rule.value):
            found.append((order, rule))
    return found


def overdue_checks(defn: PathwayDefinition, facts: PatientFacts, now: float) -> list[float]:
    """Future instants at which an open order becomes overdue."""
    due = []
    for order in open_orders(facts):
        rule = overdue_limit(defn, facts, order)
        if rule is not None:
            due.append(check_after(order.day, rule.value))
    return [d for d in due if d > now]
