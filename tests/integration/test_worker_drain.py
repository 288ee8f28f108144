"""SIGTERM to a real ``vcf-server worker`` while an order is being written: the worker stops
taking work (``/readyz`` 503, draining), lets the activity finish, reports it, and exits 0.

The activity is made slow from outside, with no test hook in the code: the test holds the order
book's write lock, so the order write waits on SQLite's busy timeout until the lock is released.
A second worker asked to serve the same metrics port refuses to start, naming the variable;
with the Temporal server gone, the first stays alive (``/healthz``) but not ready (``/readyz``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState

from activities.order_book import OrderBook
from pathway.decisions import decide
from pathway.facts import PatientFacts
from pathway.guideline import load_definition
from tests.helpers import ROOT, TEST_CONVERTER, enrollment, eventually, free_port, key_ring_env
from worker.dev_server import DevServer
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")
DRAIN_TIMEOUT = 30  # seconds: VCF_SHUTDOWN_TIMEOUT, far above what the held lock takes


def start_worker(address: str, data_dir: Path, metrics_port: int) -> subprocess.Popen:
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "VCF_DATA_DIR": str(data_dir),
           "VCF_METRICS_PORT": str(metrics_port), "VCF_SHUTDOWN_TIMEOUT": str(DRAIN_TIMEOUT), **key_ring_env()}
    with open(data_dir / "worker.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "server.main", "worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=log)


def probe(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)
    except OSError:
        return 0, {}


async def test_sigterm_drains_the_running_activity_then_exits_cleanly(tmp_path):
    server = DevServer(tmp_path, port=free_port(), ui_port=free_port())
    client = await server.start(TEST_CONVERTER)
    port = free_port()
    ops = f"http://127.0.0.1:{port}"
    worker = start_worker(server.address, tmp_path, port)
    lock = None
    try:
        async def ready():
            return (await asyncio.to_thread(probe, f"{ops}/readyz"))[0] == 200 or worker.poll() is not None

        assert await eventually(ready, timeout=30) and worker.poll() is None, (tmp_path / "worker.log").read_text()
        # Hold the order book's write lock: the first order of the enrollment waits for it.
        lock = sqlite3.connect(tmp_path / "orders.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        handle = await start_pathway(client, enrollment("pt-drain-01"))

        async def order_in_flight():
            pending = (await handle.describe()).raw_description.pending_activities
            return [a for a in pending if a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED]

        assert await eventually(order_in_flight, timeout=30)
        worker.send_signal(signal.SIGTERM)

        async def draining():
            status, body = await asyncio.to_thread(probe, f"{ops}/readyz")
            return status == 503 and "worker: draining (shutting down)" in body["detail"]

        assert await eventually(draining, timeout=10)  # no new work, while the order is still being written
        assert worker.poll() is None
        assert (await asyncio.to_thread(probe, f"{ops}/healthz"))[0] == 200  # alive: no restart mid-drain
        lock.rollback()
        lock.close()
        lock = None
        assert await asyncio.to_thread(worker.wait, DRAIN_TIMEOUT) == 0
        log = (tmp_path / "worker.log").read_text()
        assert "worker draining" in log and "worker stopped" in log
        history = await handle.fetch_history()
        types = [e.event_type for e in history.events]
        # The order in flight was written and reported; the worker took nothing after it.
        assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) == 1
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT not in types
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in types
        # That one activity wrote the enrollment's orders (one call per decision step), each once.
        orders = OrderBook(tmp_path / "orders.db").list(workflow_id=handle.id)
        expected = decide(load_definition(), PatientFacts(enrollment=enrollment("pt-drain-01")), 0.0).actions
        assert sorted(o.action_id for o in orders) == sorted(a.id for a in expected)
        await handle.terminate("test done")
    finally:
        if lock is not None:
            lock.close()
        if worker.poll() is None:
            worker.kill()
        server.stop()


async def test_a_worker_refuses_a_metrics_port_in_use_and_is_not_ready_without_temporal(tmp_path):
    server = DevServer(tmp_path, port=free_port(), ui_port=free_port())
    await server.start(TEST_CONVERTER)
    port = free_port()
    first, second = start_worker(server.address, tmp_path, port), None
    try:
        async def ready():
            return (await asyncio.to_thread(probe, f"http://127.0.0.1:{port}/healthz"))[0] == 200

        assert await eventually(ready, timeout=30)
        second = start_worker(server.address, tmp_path, port)
        assert await asyncio.to_thread(second.wait, 60) == 1
        assert f"127.0.0.1:{port}" in (tmp_path / "worker.log").read_text()
        assert "VCF_METRICS_PORT" in (tmp_path / "worker.log").read_text()
        server.stop()  # Temporal gone: the first worker is alive but not ready, and says why

        async def not_ready():
            status, body = await asyncio.to_thread(probe, f"http://127.0.0.1:{port}/readyz")
            return status == 503 and any(d.startswith("temporal: not answering") for d in body["detail"])

        assert await eventually(not_ready, timeout=20)
        assert (await asyncio.to_thread(probe, f"http://127.0.0.1:{port}/healthz"))[0] == 200
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        server.stop()
