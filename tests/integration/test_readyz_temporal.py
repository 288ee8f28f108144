"""An API started while the Temporal server is down: it serves, ``/readyz`` answers 503 naming
Temporal, a request that needs Temporal is a 503 naming it (retry later), never a 500 — and once
the server is up, the same app is ready (its client connects on the first call)."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.order_book import OrderBook
from api.app import create_app
from tests.helpers import TEST_CONVERTER, eventually, free_port
from tests.integration.api_support import TOKEN, enrollment, http_client
from worker.runtime import binary
from workflows import search_attributes as sa
from workflows.models import workflow_id_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_an_api_started_before_temporal_answers_503_then_serves_once_it_is_up(tmp_path):
    port = free_port()
    client = await Client.connect(f"127.0.0.1:{port}", lazy=True, data_converter=TEST_CONVERTER)
    app = create_app(client=client, order_book=OrderBook(tmp_path / "orders.db"), tokens={TOKEN},
                     task_queue=f"down-{uuid.uuid4()}")
    patient = f"pt-down-{uuid.uuid4().hex[:8]}"
    async with http_client(app) as http:
        r = await http.get("/readyz")
        assert r.status_code == 503 and any(d.startswith("temporal: not answering") for d in r.json()["detail"])
        assert (await http.get("/healthz")).status_code == 200
        r = await http.post("/v1/patients", json=enrollment(patient))
        assert r.status_code == 503, r.text
        assert r.json()["detail"] == ["temporal: UNAVAILABLE"] and r.headers["retry-after"]
        env = await WorkflowEnvironment.start_local(port=port, dev_server_existing_path=binary("temporal"),
                                                    search_attributes=sa.ALL, data_converter=TEST_CONVERTER)
        try:
            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200
            assert await eventually(ready, timeout=30)
            assert (await http.post("/v1/patients", json=enrollment(patient))).status_code == 201
            assert await env.client.get_workflow_handle(workflow_id_for(patient)).describe()
        finally:
            await env.shutdown()
