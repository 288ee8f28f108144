"""How the workflows call their activities (order-book writes, starting a watch): one timeout and
retry policy, and a permanent failure logged, never fatal to the workflow that asked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from pathway.facts import ALARM_SETTLE_SECONDS

SETTLE = timedelta(seconds=ALARM_SETTLE_SECONDS)
ORDER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=5))
ORDER_TIMEOUT = timedelta(seconds=10)  # an order write is one SQLite insert (a start, one server call)


async def call_activity(method: Any, request: Any, kind: str, *, local: bool = False) -> Any:
    """Run an activity (retried while the order book or the server is unavailable); a permanent failure
    is logged with ``kind`` (the order's, or what was started) and answers None. ``local``: as a local
    activity, in the worker that runs the workflow (one history event instead of three and a task)."""
    execute = workflow.execute_local_activity_method if local else workflow.execute_activity_method
    try:
        return await execute(method, request, start_to_close_timeout=ORDER_TIMEOUT, retry_policy=ORDER_RETRY)
    except ActivityError as err:
        workflow.logger.error("order book activity failed", extra={"action_kind": kind, "error": str(err.cause)})
        return None
