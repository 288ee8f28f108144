"""`make run`'s runner end to end: UI, worker, demo patient; Ctrl-C stops all; a rerun resumes.
Payloads are stored encrypted with the key ring it creates, and its UI decodes them through the
API's codec routes."""

from __future__ import annotations

import base64
import json
import stat
import urllib.request

import pytest
from temporalio.client import Client

from pathway.guideline import load_definition
from pathway.plan_definition import canonical
from security.codec import data_converter
from security.keyring import KeyRing
from tests.helpers import eventually, free_port
from tests.integration.dev_runner import Runner
from workflows import search_attributes as sa
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_make_run_brings_up_everything_and_resumes(tmp_path):
    ports = {"TEMPORAL_PORT": free_port(), "TEMPORAL_UI_PORT": free_port(), "VCF_API_PORT": free_port(),
             "VCF_METRICS_PORT": free_port()}
    runner = Runner(tmp_path, ports)
    try:
        await runner.wait_for("Ctrl-C stops everything.")
        banner = "".join(runner.output)
        ui = f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}"
        assert ui in banner and workflow_id_for("pt-demo-0001") in banner
        assert urllib.request.urlopen(ui, timeout=10).status == 200
        api = f"http://127.0.0.1:{ports['VCF_API_PORT']}"
        ui_settings = json.load(urllib.request.urlopen(f"{ui}/api/v1/settings", timeout=10))
        assert ui_settings["Codec"]["Endpoint"] == f"{api}/codec"  # the UI decodes through the API
        # The development key ring, created on the first run: the owner's only.
        assert stat.S_IMODE((tmp_path / "key-ring.json").stat().st_mode) == 0o600
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
        ring = KeyRing.read(tmp_path / "key-ring.json")
        assert ring.current in banner and "/codec" in banner
        client = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}", data_converter=data_converter(ring))
        handle = client.get_workflow_handle(workflow_id_for("pt-demo-0001"))
        state = await handle.query(PatientPathwayWorkflow.state)
        assert state.status == "running" and state.fracture_level == "L2" and state.latest_pain.nrs == 8
        first_run = (await handle.describe()).run_id
        attrs = (await handle.describe()).typed_search_attributes
        assert attrs.get(sa.PATHWAY_PHASE) == "acute" and attrs.get(sa.FRACTURE_LEVEL) == "L2"

        async def stored_timer_names():
            history = await handle.fetch_history()
            return [e.user_metadata.summary for e in history.events if e.HasField("timer_started_event_attributes")]

        stored = await eventually(stored_timer_names)
        assert not any(b"opioid review" in p.data for p in stored)  # ciphertext on the server
        # What the UI does: the codec route decodes them (no token in development, from loopback).
        body = json.dumps({"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                                         "data": base64.b64encode(p.data).decode()} for p in stored]}).encode()
        request = urllib.request.Request(f"{api}/codec/decode", data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Namespace": "default", "Origin": ui})
        answer = urllib.request.urlopen(request, timeout=10)
        assert answer.headers["Access-Control-Allow-Origin"] == ui
        names = [base64.b64decode(p["data"]).decode() for p in json.load(answer)["payloads"]]
        assert any("opioid review" in n for n in names)  # one alarm, named for the earliest due step
        state = await handle.query(PatientPathwayWorkflow.state)  # timers are armed once enrollment is done
        assert len(state.actions) >= 9
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
        assert KeyRing.read(tmp_path / "key-ring.json") == ring  # the same key ring, not a new one
        client = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}", data_converter=data_converter(ring))
        handle = client.get_workflow_handle(workflow_id_for("pt-demo-0001"))
        again = await handle.query(PatientPathwayWorkflow.state)
        assert (await handle.describe()).run_id == first_run
        assert [a.id for a in again.actions] == [a.id for a in state.actions]  # found where it was, not re-enrolled
        assert await runner.stop() == 0
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
