"""Watching the results a completed pathway still waits for.

The pathway completes on the day it orders the 12-month adjacent-fracture screening, so that
order (and any other still without its result) outlives it. Its result is taken after the end
(:mod:`activities.results_after_end`); this small workflow, started by the pathway as it
completes and left running after it, makes sure a result that never comes still reaches someone:
at each order's overdue instant it escalates to the care team, as the pathway would have, unless
the result came meanwhile. Its id is the pathway's with a suffix (no PHI).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities, OverdueRequest
    from pathway.contract import EVENT_TYPES
    from workflows.activity_calls import SETTLE, call_activity
    from workflows.metrics import PathwayMetrics


def watch_workflow_id(pathway_workflow_id: str) -> str:
    """The watch's workflow id: its pathway's, suffixed."""
    return f"{pathway_workflow_id}/open-orders"


class WatchedResult(BaseModel):
    """An order still waiting for its result, the pathway day it is overdue, and the escalation then."""

    due_day: float
    escalation: OverdueRequest


class OpenOrdersWatchInput(BaseModel):
    """What a completed pathway hands over: its enrollment instant and the results it waits for."""

    enrolled_at: datetime
    watched: list[WatchedResult]
    ui_metadata: bool = True


@workflow.defn(name="OpenOrdersWatch")
class OpenOrdersWatchWorkflow:
    """Escalates each result still missing at its overdue instant, after the pathway has ended."""

    @workflow.run
    async def run(self, input: OpenOrdersWatchInput) -> list[str]:
        """Wait for each overdue instant in turn; return the action ids of the orders escalated."""
        escalated = []
        for watched in sorted(input.watched, key=lambda w: w.due_day):
            request = watched.escalation
            wait = input.enrolled_at + timedelta(days=watched.due_day) + SETTLE - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait, summary=f"{request.order_kind} result due"
                                     if input.ui_metadata else None)
            receipt = await call_activity(OrderActivities.escalate_overdue_result_after_end, request,
                                            request.order_kind)
            if receipt is not None:
                escalated.append(request.order_action_id)
                PathwayMetrics(workflow.metric_meter(), EVENT_TYPES).result_overdue(request.order_kind)
        return escalated
