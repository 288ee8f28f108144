"""Kill the worker process mid-pathway (dev server, SQLite) and start it again.

Nothing is lost (events sent while no worker runs are applied once it is back; a timer that fell
due meanwhile fires) and nothing is ordered twice (the order book holds each action once).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from activities.order_book import OrderBook
from pathway.guideline import PathwayDefinition, load_definition
from tests.helpers import ROOT, TEST_CONVERTER, enrollment, eventually, free_port, key_ring_env
from worker.dev_server import DevServer
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")
CALCITONIN_STOP_SECONDS = 8


def fast_calcitonin_stop() -> PathwayDefinition:
    """The current definition with the calcitonin stop due seconds after enrollment."""
    data = load_definition().model_dump()
    data["version"] += "-crash-test"
    data["rules"]["calcitonin_stop_day"]["value"] = CALCITONIN_STOP_SECONDS / 86400
    return PathwayDefinition.model_validate(data)


def start_worker(address: str, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "VCF_DATA_DIR": str(data_dir),
           "VCF_METRICS_PORT": str(free_port()), **key_ring_env()}
    with open(data_dir / "worker.log", "ab") as log:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "worker.main"], cwd=ROOT, env=env, stdout=log, stderr=log)


async def test_killed_worker_loses_no_event_and_duplicates_no_order(tmp_path):
    server = DevServer(tmp_path, port=free_port(), ui_port=free_port())
    client = await server.start(TEST_CONVERTER)
    worker = start_worker(server.address, tmp_path)
    try:
        handle = await start_pathway(client, enrollment("pt-crash-01"), definition=fast_calcitonin_stop())

        async def enrolled():
            return len(await handle.query(PatientPathwayWorkflow.actions)) >= 9

        assert await eventually(enrolled, timeout=30)
        burst = [
            {"type": "mri", "etiology": "osteoporotic", "event_id": "e1"},
            {"type": "radiograph", "height_loss_pct": 26, "new_fracture_level": "L1", "event_id": "e2"},
            {"type": "neuro", "deficit": True, "event_id": "e3"},
            {"type": "dxa", "t_score": -2.9, "event_id": "e4"},
            {"type": "pulmonary", "dysfunction": True, "event_id": "e5"},
        ]
        for event in burst:
            await handle.signal(PatientPathwayWorkflow.event, event)

        async def writing_orders():  # the first result is in: the orders of the burst are being written
            return "result recorded" in (tmp_path / "worker.log").read_text()

        assert await eventually(writing_orders, timeout=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait()

        # No worker runs: events are still accepted (signals are durable), duplicates included.
        for event in ({"type": "pain", "nrs": 6, "event_id": "e6"},
                      {"type": "side_effect", "drug": "calcitonin", "effect": "dizziness", "event_id": "e7"},
                      {"type": "neuro", "deficit": True, "event_id": "e3"}):
            await handle.signal(PatientPathwayWorkflow.event, event)
        await asyncio.sleep(CALCITONIN_STOP_SECONDS)  # the calcitonin stop falls due while down

        worker = start_worker(server.address, tmp_path)

        async def caught_up():
            timeline = await handle.query(PatientPathwayWorkflow.timeline)
            applied = [t.data.get("event_id") for t in timeline if t.entry == "event"]
            actions = await handle.query(PatientPathwayWorkflow.actions)
            stopped = any(a.kind == "stop_calcitonin" for a in actions)
            return (applied, actions) if len(applied) >= 7 and stopped else None

        caught = await eventually(caught_up, timeout=60)
        assert caught, "the restarted worker did not catch up"
        applied, actions = caught
        assert sorted(applied) == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]  # each once, none lost
        kinds = Counter(a.kind for a in actions)
        assert kinds["refer_urgent_spine_surgery"] == 1
        assert kinds["flag_new_vertebral_fracture"] == 1
        assert kinds["order_mri"] == 2  # enrollment + the new level
        assert kinds["stop_calcitonin"] == 1
        book = OrderBook(tmp_path / "orders.db")

        async def booked():  # the workflow may still be deciding (a later review): wait until book and workflow agree
            actions = await handle.query(PatientPathwayWorkflow.actions)
            orders = book.list(workflow_id=handle.id)
            agree = sorted(o.action_id for o in orders) == sorted(a.id for a in actions)
            return (actions, orders) if agree else None

        actions, orders = await eventually(booked, timeout=30)
        assert sorted(o.action_id for o in orders) == sorted(a.id for a in actions)
        assert len({o.idempotency_key for o in orders}) == len(orders)
        await handle.terminate("test done")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        server.stop()
