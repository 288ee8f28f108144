"""Helpers shared by the tests."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.order_book import OrderBook
from worker.runtime import build_worker


def make_worker(env: WorkflowEnvironment, book: OrderBook, task_queue: str) -> Worker:
    """A worker whose workflow bugs fail the workflow at once instead of retrying silently."""
    return build_worker(env.client, book, task_queue, workflow_failure_exception_types=[Exception])
