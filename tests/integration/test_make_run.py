"""`make run`'s runner end to end: UI, worker, demo patient; Ctrl-C stops all; a rerun resumes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from pathway.guideline import load_definition
from pathway.plan_definition import canonical
from tests.helpers import ROOT, eventually, free_port
from workflows import search_attributes as sa
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Runner:
    """One ``python -m worker.dev`` process with its own ports and data directory."""

    def __init__(self, data_dir: Path, ports: dict[str, int]):
        env = {**os.environ, "VCF_DATA_DIR": str(data_dir), **{k: str(v) for k, v in ports.items()}}
        self.process = subprocess.Popen([sys.executable, "-m", "worker.dev"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []

    async def wait_for(self, text: str, timeout: float = 90) -> None:
        async def read() -> None:
            while True:
                line = await asyncio.to_thread(self.process.stdout.readline)
                if not line:
                    raise AssertionError("runner exited:\n" + "".join(self.output))
                self.output.append(line)
                if text in line:
                    return

        await asyncio.wait_for(read(), timeout)

    async def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        await self.wait_for("Stopped.", timeout=60)
        return await asyncio.to_thread(self.process.wait, 30)


async def test_make_run_brings_up_everything_and_resumes(tmp_path):
    ports = {"TEMPORAL_PORT": free_port(), "TEMPORAL_UI_PORT": free_port(), "VCF_API_PORT": free_port()}
    runner = Runner(tmp_path, ports)
    try:
        await runner.wait_for("Ctrl-C stops everything.")
        banner = "".join(runner.output)
        ui = f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}"
        assert ui in banner and workflow_id_for("pt-demo-0001") in banner
        assert urllib.request.urlopen(ui, timeout=10).status == 200
        client = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}", data_converter=pydantic_data_converter)
        handle = client.get_workflow_handle(workflow_id_for("pt-demo-0001"))
        state = await handle.query(PatientPathwayWorkflow.state)
        assert state.status == "running" and state.fracture_level == "L2" and state.latest_pain.nrs == 8
        first_run = (await handle.describe()).run_id
        attrs = (await handle.describe()).typed_search_attributes
        assert attrs.get(sa.PATHWAY_PHASE) == "acute" and attrs.get(sa.FRACTURE_LEVEL) == "L2"

        async def named_timers():
            history = await handle.fetch_history()
            return {e.user_metadata.summary.data.decode() for e in history.events
                    if e.HasField("timer_started_event_attributes")}

        assert any("12-week review" in n for n in await eventually(named_timers))
        state = await handle.query(PatientPathwayWorkflow.state)  # timers are armed once enrollment is done
        assert len(state.actions) >= 9
        api = f"http://127.0.0.1:{ports['VCF_API_PORT']}"
        token = (tmp_path / "api-token").read_text().strip()
        assert token in banner
        request = urllib.request.Request(f"{api}/v1/patients/pt-demo-0001",
                                         headers={"Authorization": f"Bearer {token}"})
        body = json.load(urllib.request.urlopen(request, timeout=10))
        assert body["phase"] == "acute" and body["guideline_version"] == state.guideline_version
        request = urllib.request.Request(f"{api}/v1/patients/pt-demo-0001/CarePlan",
                                         headers={"Authorization": f"Bearer {token}"})
        plan = json.load(urllib.request.urlopen(request, timeout=10))
        assert plan["instantiatesCanonical"] == [canonical(load_definition())]  # the version it keeps
        assert await runner.stop() == 0
        assert (tmp_path / "temporal.db").exists() and (tmp_path / "orders.db").exists()
        # Patient data and the token are the owner's only: every file 0600, whoever wrote it.
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*") if p.is_file()}
        assert {"temporal.db", "orders.db", "api-token"} <= files.keys()
        assert files == dict.fromkeys(files, 0o600), files
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700

        runner = Runner(tmp_path, ports)
        await runner.wait_for("Ctrl-C stops everything.")
        client = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}", data_converter=pydantic_data_converter)
        handle = client.get_workflow_handle(workflow_id_for("pt-demo-0001"))
        again = await handle.query(PatientPathwayWorkflow.state)
        assert (await handle.describe()).run_id == first_run
        assert [a.id for a in again.actions] == [a.id for a in state.actions]  # found where it was, not re-enrolled
        assert await runner.stop() == 0
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
