"""Scale-out: two ``vcf-server worker`` processes and one ``vcf-server api`` on one dev server and
one PostgreSQL. 50 patients enrolled through the HTTP API, their events streamed, one worker
killed with SIGKILL midway: every order exactly once per (workflow, action), every accepted event
applied once, and the API lists every order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.helpers import ROOT, TEST_CONVERTER, eventually, free_port, key_ring_env
from worker.dev_server import DevServer
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
PATIENTS = 50
TOKEN = "scale-out-token"
CONCURRENCY = 10  # requests in flight at once, as a care system's interface engine might send them


def events_of(patient: str) -> list[dict]:
    """Each patient's stream: an MRI result, a pain report, a DXA result."""
    return [{"type": "mri", "etiology": "osteoporotic", "event_id": f"{patient}-mri"},
            {"type": "pain", "nrs": 5, "event_id": f"{patient}-pain"},
            {"type": "dxa", "t_score": -2.9, "event_id": f"{patient}-dxa"}]


def vcf_server(command: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "ab") as out:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "server.main", command], cwd=ROOT,
                                env={**os.environ, **key_ring_env(), "VCF_LOG_LEVEL": "INFO", **env},
                                stdout=out, stderr=out)


async def post_all(http: httpx.AsyncClient, requests: list[tuple[str, dict]]) -> list[int]:
    """POST each (path, body), at most CONCURRENCY at once; the status codes, in order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def post(path: str, body: dict) -> int:
        async with gate:
            return (await http.post(path, json=body)).status_code
    return list(await asyncio.gather(*(post(path, body) for path, body in requests)))


async def test_two_workers_one_killed_every_order_once_every_event_once(tmp_path, postgres):
    started, phases = time.monotonic(), []  # when each step was done: printed, never asserted
    url = postgres.new_database()
    server = DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port())
    client = await server.start(TEST_CONVERTER)
    api_port = free_port()
    common = {"TEMPORAL_ADDRESS": server.address, "VCF_DATABASE_URL": url}
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("worker-a", "worker-b", "api")}
    try:
        for name in ("worker-a", "worker-b"):
            processes[name] = vcf_server("worker", logs[name], {**common, "VCF_DATA_DIR": str(tmp_path / name),
                                                                "VCF_METRICS_PORT": str(free_port())})
        processes["api"] = vcf_server("api", logs["api"], {**common, "VCF_DATA_DIR": str(tmp_path / "api"),
                                                           "VCF_API_PORT": str(api_port), "VCF_API_TOKENS": TOKEN})
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async def api_ready():
                assert processes["api"].poll() is None, logs["api"].read_text()
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False
            await eventually(api_ready, timeout=60)
            phases.append(("api up", time.monotonic() - started))

            patients = [f"pt-scale-{i:03d}" for i in range(PATIENTS)]
            enrolled = await post_all(http, [("/v1/patients", {
                "id": p, "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8,
                "onset_days_before_enrollment": 3}) for p in patients])
            assert enrolled == [201] * PATIENTS
            phases.append(("enrolled", time.monotonic() - started))

            async def both_workers_ordering():  # the work is shared: each worker has placed orders
                return all("order placed" in logs[name].read_text() for name in ("worker-a", "worker-b"))
            await eventually(both_workers_ordering, timeout=60)
            phases.append(("both ordering", time.monotonic() - started))

            stream = [(f"/v1/patients/{p}/events", e) for p in patients for e in events_of(p)]
            half = len(stream) // 2
            assert await post_all(http, stream[:half]) == [202] * half
            processes["worker-a"].send_signal(signal.SIGKILL)  # midway: its tasks and activities are lost with it
            processes["worker-a"].wait()
            phases.append(("killed", time.monotonic() - started))
            assert await post_all(http, stream[half:]) == [202] * (len(stream) - half)
            assert await post_all(http, stream[:10]) == [200] * 10  # sent again: duplicates, not sent on
            phases.append(("streamed", time.monotonic() - started))

            async def all_applied():
                missing = []
                for p in patients:
                    timeline = await client.get_workflow_handle(workflow_id_for(p)).query(
                        PatientPathwayWorkflow.timeline)
                    applied = [t.data.get("event_id") for t in timeline if t.entry == "event"]
                    if sorted(applied) != sorted(e["event_id"] for e in events_of(p)):
                        missing.append((p, applied))
                return not missing
            await eventually(all_applied, timeout=120)  # each event applied, and once
            phases.append(("applied", time.monotonic() - started))

            def book() -> dict[str, Counter]:
                with psycopg.connect(url) as db:
                    rows = db.execute("SELECT workflow_id, action_id FROM orders").fetchall()
                orders: dict[str, Counter] = {}
                for workflow_id, action_id in rows:
                    orders.setdefault(workflow_id, Counter())[action_id] += 1
                return orders

            async def book_agrees():  # activities retried after the kill land; none twice
                orders = book()
                for p in patients:
                    handle = client.get_workflow_handle(workflow_id_for(p))
                    actions = await handle.query(PatientPathwayWorkflow.actions)
                    if orders.get(handle.id, Counter()) != Counter(a.id for a in actions):
                        return None
                return orders
            orders = await eventually(book_agrees, timeout=120)
            phases.append(("book agrees", time.monotonic() - started))
            assert len(orders) == PATIENTS
            assert all(n == 1 for counts in orders.values() for n in counts.values())
            total = sum(sum(counts.values()) for counts in orders.values())

            listed, page = [], "/v1/orders?_count=100"
            while page:
                bundle = (await http.get(page)).json()
                listed += [entry["resource"]["id"] for entry in bundle.get("entry", [])]
                page = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
            assert len(listed) == len(set(listed)) == total  # the API sees every order, each once
        print(f"\nscale-out: {PATIENTS} patients, {len(stream)} events, {total} orders in "
              f"{time.monotonic() - started:.1f} s; " + ", ".join(f"{name} at {t:.1f} s" for name, t in phases),
              file=sys.stderr)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        server.stop()
