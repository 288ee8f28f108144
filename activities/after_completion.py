"""Activity: start the watch over the results a completed pathway still waits for.

The watch (:mod:`workflows.open_orders_watch`) is a workflow of its own, started here rather than
as the pathway's child: it outlives the pathway, and a child that completes after its parent has
closed is more than the time-skipping test server can take. Idempotent: the watch's id derives
from the pathway's, so a retry finds it started.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment

from workflows.open_orders_watch import OpenOrdersWatchInput, OpenOrdersWatchWorkflow, watch_workflow_id


class AfterCompletionActivities:
    """What a pathway starts as it completes, bound to a client and the worker's task queue."""

    def __init__(self, client: Client, task_queue: str):
        self.client, self.task_queue = client, task_queue
        # The watches started through this worker, each with the instant its last escalation is due (see run_out).
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

    async def run_out(self, env: WorkflowEnvironment, longest: timedelta = timedelta(days=60)) -> None:
        """Let the watches started here run to their end, moving the test server's clock to the last
        instant each waits for, then a day at a time (at most ``longest``, then it is terminated):
        for a worker whose run ends with it (a scenario, a test, a benchmark on the time-skipping
        server), where no worker would serve a watch left waiting and the server's one clock would
        wait on it. Call it while the worker still runs. On a server without time skipping, they
        are left to run (and a worker to serve them)."""
        for handle, last_due in self.started if env.supports_time_skipping else ():
            ahead = last_due - await env.get_current_time()
            if ahead > timedelta(0):  # one move to its last instant is the usual end
                await env.sleep(ahead)
            waited = timedelta(0)
            while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                if waited >= longest:
                    await handle.terminate("its run ended before it did")
                    break
                await env.sleep(timedelta(days=1))
                waited += timedelta(days=1)
        self.started.clear()

    def all(self) -> list:
        """The activity callables, for the worker."""
        return [self.start_open_orders_watch]
