"""Activity: start the watch over the results a completed pathway still waits for.

The watch (:mod:`workflows.open_orders_watch`) is a workflow of its own, started here rather than
as the pathway's child: it outlives the pathway, and a child that completes after its parent has
closed is more than the time-skipping test server can take. Idempotent: the watch's id derives
from the pathway's, so a retry finds it started.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from workflows.open_orders_watch import OpenOrdersWatchInput, OpenOrdersWatchWorkflow, watch_workflow_id


class AfterCompletionActivities:
    """What a pathway starts as it completes, bound to a client and the worker's task queue."""

    def __init__(self, client: Client, task_queue: str):
        self.client, self.task_queue = client, task_queue
        # The watches started through this worker, each with the instant its last escalation is due (for a
        # run that ends with its worker: worker.runtime.ephemeral_worker).
        self.started: list[tuple[WorkflowHandle, datetime]] = []

    @activity.defn(name="start_open_orders_watch")
    async def start_open_orders_watch(self, watch: OpenOrdersWatchInput) -> bool:
        """Start the calling pathway's watch; False if it was started already."""
        pathway_id = activity.info().workflow_id
        if pathway_id is None:
            raise ApplicationError("start_open_orders_watch: called outside a pathway", non_retryable=True)
        watch_id = watch_workflow_id(pathway_id)
        try:
            handle = await self.client.start_workflow(
                OpenOrdersWatchWorkflow.run, watch, id=watch_id, task_queue=self.task_queue,
                static_summary=f"Results awaited after completion: {len(watch.watched)}" if watch.ui_metadata else None)
        except WorkflowAlreadyStartedError:
            return False
        last = max((w.due_day for w in watch.watched), default=0.0)
        self.started.append((handle, watch.enrolled_at + timedelta(days=last, seconds=2)))
        activity.logger.info("open-orders watch started", extra={"watched": len(watch.watched)})
        return True

    def all(self) -> list:
        """The activity callables, for the worker."""
        return [self.start_open_orders_watch]
