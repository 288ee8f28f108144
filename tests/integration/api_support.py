"""Shared pieces of the API tests: the app wired to the real dev server, and HTTP to it (the
``stack`` fixture, with a real worker, is in conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.order_book import OrderBook
from api.app import create_app
from tests.helpers import eventually
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE_URL = "http://api.test/"  # where the in-process client reaches the app (and so its links' base)
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
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL.rstrip("/"),
                             headers=AUTH if authenticated else None)


def build_app(env: WorkflowEnvironment, book: OrderBook, task_queue: str, public_url: str = BASE_URL, **options: Any):
    """The app under test, wired to the real dev server; its links start with ``public_url``."""
    return create_app(client=env.client, order_book=book, tokens={TOKEN}, task_queue=task_queue,
                      query_timeout=QUERY_TIMEOUT, public_url=public_url, **options)


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
