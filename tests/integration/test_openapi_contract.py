"""The API keeps its OpenAPI description: schemathesis, every check, the stateful phase too.

A real uvicorn on a loopback port serves the app over the real dev server, with a worker on its
own task queue and a fresh SQLite order book; ``st run`` (schemathesis 4) runs as its own
process against ``/openapi.json``, as a new user would, and must find nothing. Its files
(``.schemathesis/``, reports) go to the test's tmp directory. The seed is fixed so the gate is
reproducible; change SEED (or drop ``--seed``) to explore.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from activities.order_book import OrderBook
from api.app import create_app
from api.main import serve
from drill.processes import free_port
from worker.runtime import build_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")

HERE = Path(__file__).resolve().parent
ST = str(Path(sys.executable).parent / "st")
TOKEN = "st-" + uuid.uuid4().hex
SEED = 11
MAX_EXAMPLES = 75  # per operation in each phase (stateful: schemathesis.toml); a few thousand requests in all


async def _until(request, timeout: float = 30.0) -> httpx.Response:
    """Repeat ``request`` until it answers 2xx."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = await request()
            if answer.is_success:
                return answer
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the API did not answer in time")
        await asyncio.sleep(0.1)


async def _enroll_the_example_patient(http: httpx.AsyncClient) -> None:
    """The patient of /docs' examples (pt-0001), with its enrollment orders placed: so that
    example requests and the stateful phase's links (enrollment -> state -> order) meet real data."""
    spec = (await http.get("/openapi.json")).json()
    example = spec["paths"]["/v1/patients"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert (await http.post("/v1/patients", json=example)).status_code == 201
    await _until(lambda: _with_orders(http, example["id"]))


async def _with_orders(http: httpx.AsyncClient, patient_id: str) -> httpx.Response:
    answer = await http.get("/v1/orders", params={"patient": patient_id, "status": "active"})
    return answer if answer.json().get("total", 0) >= 5 else httpx.Response(404)


@pytest_asyncio.fixture(loop_scope="session")
async def api_url(dev_env, tmp_path):
    """The API on a loopback port, a worker behind it (workflow bugs fail at once, not retry),
    and one enrolled patient."""
    book = OrderBook(tmp_path / "orders.db")
    task_queue = f"st-{uuid.uuid4()}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(client=dev_env.client, order_book=book, tokens={TOKEN}, task_queue=task_queue, query_timeout=1.0,
                     public_url=url, subscription_hosts=["loopback"])  # no delivery leaves loopback in tests
    async with build_worker(dev_env.client, book, task_queue, workflow_failure_exception_types=[Exception]):
        server = asyncio.create_task(serve(app, "127.0.0.1", port))
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            await _until(lambda: http.get("/healthz"))
            await _enroll_the_example_patient(http)
        yield url
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


async def test_the_api_answers_as_its_openapi_description_says(api_url, tmp_path):
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        ST, "--config-file", str(HERE / "schemathesis.toml"), "run", f"{api_url}/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py"), "NO_COLOR": "1",
             "COLUMNS": "120"})
    out, _ = await proc.communicate()
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode(errors="replace"))
    generated = re.search(r"(\d+) generated", text)
    print(f"schemathesis: {generated.group(1) if generated else '?'} cases, all checks, stateful included, "
          f"seed {SEED}, {time.monotonic() - started:.0f}s")
    (tmp_path / "st-output.txt").write_text(text)
    print(text[-6000:])
    assert proc.returncode == 0, text[-20000:]
    assert "Stateful" in text and generated and int(generated.group(1)) >= 1000
