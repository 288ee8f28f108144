"""Shared pieces of the API tests: the app wired to the real dev server, a real worker, HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.order_book import OrderBook
from api.app import create_app
from tests.helpers import make_worker
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Short, so the no-worker fallbacks answer quickly in tests.
QUERY_TIMEOUT = 1.0


@dataclass
class Stack:
    """An app over the dev server, its order book and task queue, and an HTTP client to it."""

    env: WorkflowEnvironment
    app: Any
    book: OrderBook
    task_queue: str
    http: httpx.AsyncClient


def new_patient_id() -> str:
    """A fresh pseudonymous key."""
    return f"pt-{uuid.uuid4().hex[:12]}"


def enrollment(patient_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid enrollment body (the contract's example)."""
    return {"id": patient_id, "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8,
            "onset_days_before_enrollment": 3, "red_flags": [], **overrides}


def http_client(app, authenticated: bool = True) -> httpx.AsyncClient:
    """Real HTTP requests through the ASGI app (with the bearer token unless told otherwise)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test",
                             headers=AUTH if authenticated else None)


def build_app(env: WorkflowEnvironment, book: OrderBook, task_queue: str):
    """The app under test, wired to the real dev server."""
    return create_app(client=env.client, order_book=book, tokens={TOKEN}, task_queue=task_queue,
                      query_timeout=QUERY_TIMEOUT)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(dev_env, tmp_path_factory):
    """The app, a running worker on its own task queue, and an HTTP client (one per module)."""
    book = OrderBook(tmp_path_factory.mktemp("api") / "orders.db")
    task_queue = f"api-{uuid.uuid4()}"
    async with make_worker(dev_env, book, task_queue):
        app = build_app(dev_env, book, task_queue)
        async with http_client(app) as http:
            yield Stack(dev_env, app, book, task_queue, http)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy (the worker applies events asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(0.1)


async def timeline(env: WorkflowEnvironment, patient_id: str):
    """The workflow's own timeline query (needs a worker)."""
    handle = env.client.get_workflow_handle(workflow_id_for(patient_id))
    return await handle.query(PatientPathwayWorkflow.timeline)


async def applied_event_ids(env: WorkflowEnvironment, patient_id: str) -> list[str]:
    """Event ids the workflow applied, one per application."""
    return [e.data.get("event_id") for e in await timeline(env, patient_id) if e.entry == "event"]


async def enroll(http: httpx.AsyncClient, patient_id: str | None = None, **overrides: Any) -> str:
    """Enroll a fresh patient; return its id."""
    patient_id = patient_id or new_patient_id()
    r = await http.post("/v1/patients", json=enrollment(patient_id, **overrides))
    assert r.status_code == 201, r.text
    return patient_id


async def wait_for_orders(http: httpx.AsyncClient, patient_id: str, kinds: set[str]) -> dict[str, Any]:
    """The patient's orders Bundle once orders of these action kinds are in the book."""
    async def ready():
        bundle = (await http.get("/v1/orders", params={"patient": patient_id})).json()
        notes = " ".join(n["text"] for e in bundle.get("entry", []) for n in e["resource"].get("note", []))
        return bundle if all(f"action {k}" in notes for k in kinds) else None
    return await eventually(ready)
