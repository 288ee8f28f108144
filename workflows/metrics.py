"""The pathway's own metrics, made with the SDK's metric meter so that the worker serves them
beside Temporal's on one Prometheus endpoint (:mod:`worker.ops`).

The workflow's meter records nothing while a history is replayed, so a restarted worker does
not count a patient's actions twice; recording adds no command to the history. Labels come from
fixed vocabularies (action kinds, event types, rejection causes), never an id or a free text:
no patient data reaches Prometheus. The SDK adds ``namespace``, ``task_queue`` and
``workflow_type`` (``activity_type`` for activities).

=====================================  =========  =================================================
metric                                 type       labels
=====================================  =========  =================================================
``vcf_pathway_actions``                counter    ``kind``: each action taken (one order each)
``vcf_pathway_events_rejected``        counter    ``reason`` (see REJECTION_REASONS), ``event_type``
``vcf_pathway_escalations``            counter    ``kind``: urgent referrals, follow-up outreach and
                                                  lost-to-follow-up escalations, overdue results
``vcf_pathway_overdue_results``        counter    ``order_kind``: imaging or DXA still without a
                                                  result past the limit (escalated once each)
``vcf_pathway_event_to_order_latency`` histogram  ``kind``: milliseconds from an event's arrival
                                                  to the order it caused being written
``vcf_orders_written``                 counter    ``kind``, ``created`` (``false``: the order
                                                  existed already — a retry or a replay)
=====================================  =========  =================================================
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio.common import MetricMeter

ACTIONS = "vcf_pathway_actions"
REJECTED_EVENTS = "vcf_pathway_events_rejected"
ESCALATIONS = "vcf_pathway_escalations"
OVERDUE_RESULTS = "vcf_pathway_overdue_results"
EVENT_TO_ORDER_LATENCY = "vcf_pathway_event_to_order_latency"
ORDERS_WRITTEN = "vcf_orders_written"

# Milliseconds: an order written within a workflow task or two, up to one waiting on retries.
HISTOGRAM_BUCKETS: dict[str, list[float]] = {
    EVENT_TO_ORDER_LATENCY: [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000],
}

# Actions that raise a patient to the care team's attention, and the overdue-result task.
ESCALATION_KINDS = frozenset({"refer_urgent_spine_surgery", "refer_pathologic_fracture_workup",
                              "outreach_missed_follow_up", "escalate_lost_to_follow_up"})
OVERDUE_ESCALATION = "escalate_overdue_result"

RejectionReason = Literal["invalid", "in_future", "pathway_ended", "clinical_conflict"]
REJECTION_REASONS: dict[RejectionReason, str] = {
    "invalid": "the event does not meet the contract (a field missing, out of range, unknown)",
    "in_future": "observed_at is in the future",
    "pathway_ended": "the pathway had ended",
    "clinical_conflict": "the event contradicts what is known (e.g. resume while not paused)",
}


class PathwayMetrics:
    """The pathway's instruments on one meter (the workflow's: replay-safe)."""

    def __init__(self, meter: MetricMeter, event_types: tuple[str, ...]) -> None:
        self._event_types = frozenset(event_types)
        self._actions = meter.create_counter(ACTIONS, "Actions taken by the pathway, by kind")
        self._rejected = meter.create_counter(REJECTED_EVENTS, "Events refused, by reason and event type")
        self._escalations = meter.create_counter(ESCALATIONS, "Escalations to the care team, by kind")
        self._overdue = meter.create_counter(OVERDUE_RESULTS, "Results overdue and escalated, by order kind")
        self._latency = meter.create_histogram_timedelta(
            EVENT_TO_ORDER_LATENCY, "From an event's arrival to the order it caused being written", "ms")

    def action_taken(self, kind: str) -> None:
        """Count an action (and an escalation, if it is one)."""
        self._actions.add(1, {"kind": kind})
        if kind in ESCALATION_KINDS:
            self._escalations.add(1, {"kind": kind})

    def event_rejected(self, reason: RejectionReason, event_type: str | None) -> None:
        """Count a refused event; a type outside the contract is counted as ``unknown``."""
        self._rejected.add(1, {"reason": reason, "event_type": event_type if event_type in self._event_types
                               else "unknown"})

    def result_overdue(self, order_kind: str) -> None:
        """Count an overdue result, escalated once."""
        self._overdue.add(1, {"order_kind": order_kind})
        self._escalations.add(1, {"kind": OVERDUE_ESCALATION})

    def order_written_after(self, latency: timedelta, kind: str) -> None:
        """Record how long an event took to become an order."""
        self._latency.record(max(latency, timedelta(0)), {"kind": kind})
