"""Helpers shared by the tests of every lane (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.order_book import OrderBook
from drill.processes import free_port as free_port  # the tests start servers on loopback too
from pathway.contract import Enrollment
from security.codec import data_converter
from security.keyring import KeyRing
from worker.runtime import ephemeral_worker, sandbox_runner
from workflows.models import PathwayOptions
from workflows.patient_pathway import PatientPathwayWorkflow

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SCENARIOS = TESTS / "scenarios"
HISTORIES = TESTS / "histories"
# The tests' key ring: committed, test-only, no secret. Servers, workers, replayers and the
# processes the tests start use it, and so do histories recorded for replay from now on.
TEST_KEY_RING = KeyRing.read(TESTS / "key-ring.json")
TEST_CONVERTER = data_converter(TEST_KEY_RING)
# Small enough that a test of a few dozen events crosses it; production uses the server default.
DEV_SUGGEST_CONTINUE_AS_NEW = 120
# The time-skipping server has no custom search attributes and no user metadata.
NO_SERVER_FEATURES = PathwayOptions(search_attributes=False, ui_metadata=False)


def make_worker(env: WorkflowEnvironment, book: OrderBook, task_queue: str) -> AbstractAsyncContextManager[Worker]:
    """A worker whose workflow bugs fail the workflow at once instead of retrying silently, and
    whose sandbox imports the workflow module for each run (its restrictions checked)."""
    return ephemeral_worker(env, book, task_queue, workflow_failure_exception_types=[Exception],
                            workflow_runner=sandbox_runner(isolated=True))


def replayer(*, isolated: bool = True) -> Replayer:
    """A replayer of the patient workflow, configured as the worker is (the workflow module
    isolated, as in :func:`make_worker`, unless ``isolated`` is False: shared, as in production)."""
    return Replayer(workflows=[PatientPathwayWorkflow], data_converter=TEST_CONVERTER,
                    workflow_runner=sandbox_runner(isolated=isolated))


def key_ring_env() -> dict[str, str]:
    """The environment of a process the tests start: its key ring is the tests'."""
    return {"VCF_KEY_RING": TEST_KEY_RING.to_json()}


def payloads_in(message: Message) -> list[Payload]:
    """Every payload anywhere in a protobuf message (a history event: input, signal, result,
    user metadata, failure attributes, memo, search attributes)."""
    if isinstance(message, Payload):
        return [message]
    found: list[Payload] = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = [v for v in value.values() if isinstance(v, Message)]
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            found.extend(payloads_in(item))
    return found


def enrollment(pid: str, **overrides: Any) -> Enrollment:
    """An L2 fracture with 25% height loss and NRS 8, as in the guideline's worked example."""
    return Enrollment(**{"id": pid, "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8, **overrides})


async def advance(env: WorkflowEnvironment, handle: WorkflowHandle, day: float) -> None:
    """Move the global test clock to ``day`` of this patient's pathway."""
    state = await handle.query(PatientPathwayWorkflow.state)
    target = state.enrolled_at + timedelta(days=day)
    delta = target - await env.get_current_time()
    if delta > timedelta(0):
        await env.sleep(delta)


async def every_result_comes_back(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    """The MRI (osteoporotic) and DXA at once, then a film after each scheduled radiograph and the
    6-month screening: only the 12-month screening, ordered as the pathway completes, stays open."""
    await handle.signal(PatientPathwayWorkflow.mri, {"etiology": "osteoporotic"})
    await handle.signal(PatientPathwayWorkflow.dxa, {"t_score": -2.7})
    for day in (15, 43, 85, 183):
        await advance(env, handle, day)
        await handle.signal(PatientPathwayWorkflow.radiograph, {"height_loss_pct": 25})


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy, and return that; fail after ``timeout``
    seconds (workers apply events, and visibility catches up, asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(0.1)


def scenario_files() -> list[Path]:
    """The scenario files in ``tests/scenarios/``, without their expectations."""
    return sorted(p for p in SCENARIOS.glob("*.json") if not p.name.endswith(".expected.json"))


def expected_of(path: Path) -> dict:
    """The ``<name>.expected.json`` beside a scenario file."""
    return json.loads(path.with_name(path.stem + ".expected.json").read_text(encoding="utf-8"))
