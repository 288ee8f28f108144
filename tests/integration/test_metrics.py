"""Metrics during ``make run``: the worker's port serves Temporal's SDK metrics and the pathway's
own (the demo patient's enrollment actions counted by kind, an escalation, a rejected event, the
event-to-order latency), answers ``/healthz`` and ``/readyz``; the API's ``/metrics`` counts a
request by route template. Neither carries a patient id."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections import Counter

import pytest
from temporalio.client import Client

from security.codec import data_converter
from security.keyring import KeyRing
from tests.helpers import eventually, free_port
from tests.integration.dev_runner import Runner
from workflows.metrics import ESCALATION_KINDS
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """``(labels, value)`` of each sample of metric ``name`` in Prometheus text."""
    found = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"] == name:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
            found.append((labels, float(match["value"])))
    return found


def by(text: str, name: str, label: str) -> Counter[str]:
    """The samples of ``name`` summed by one label."""
    total: Counter[str] = Counter()
    for labels, value in samples(text, name):
        total[labels.get(label, "")] += int(value)
    return +total


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


async def test_make_run_serves_sdk_and_pathway_metrics_and_health(tmp_path):
    ports = {"TEMPORAL_PORT": free_port(), "TEMPORAL_UI_PORT": free_port(), "VCF_API_PORT": free_port(),
             "VCF_METRICS_PORT": free_port()}
    runner = Runner(tmp_path, ports)
    try:
        await runner.wait_for("Ctrl-C stops everything.")
        worker = f"http://127.0.0.1:{ports['VCF_METRICS_PORT']}"
        api = f"http://127.0.0.1:{ports['VCF_API_PORT']}"
        assert f"{worker}/metrics" in "".join(runner.output)  # the banner says where
        ring = KeyRing.read(tmp_path / "key-ring.json")
        client = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}", data_converter=data_converter(ring))
        handle = client.get_workflow_handle(workflow_id_for("pt-demo-0001"))

        async def enrolled():
            actions = await handle.query(PatientPathwayWorkflow.actions)
            return actions if len(actions) >= 9 else None

        enrollment_actions = Counter(a.kind for a in await eventually(enrolled, timeout=30))
        # An event that is refused (pain out of range) and one that orders at once (a new deficit).
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 11, "event_id": "m-1"})
        await handle.signal(PatientPathwayWorkflow.event, {"type": "neuro", "deficit": True, "event_id": "m-2"})

        async def scraped():
            status, text = await asyncio.to_thread(get, f"{worker}/metrics")
            done = status == 200 and by(text, "vcf_pathway_event_to_order_latency_count", "kind")
            return text if done and by(text, "vcf_pathway_events_rejected", "reason") else None

        text = await eventually(scraped, timeout=30)
        actions = await handle.query(PatientPathwayWorkflow.actions)
        assert by(text, "vcf_pathway_actions", "kind") == Counter(a.kind for a in actions)
        caused = Counter(a.kind for a in actions) - enrollment_actions  # by the new deficit
        assert caused["refer_urgent_spine_surgery"] == 1
        assert by(text, "vcf_pathway_event_to_order_latency_count", "kind") == caused
        assert by(text, "vcf_pathway_escalations", "kind") == {k: n for k, n in caused.items() if k in ESCALATION_KINDS}
        assert by(text, "vcf_pathway_events_rejected", "reason") == {"invalid": 1}
        assert by(text, "vcf_pathway_events_rejected", "event_type") == {"pain": 1}
        written = samples(text, "vcf_orders_written")
        assert sum(v for labels, v in written if labels["created"] == "true") == len(actions)
        for name in ("temporal_request", "temporal_workflow_task_execution_latency_count",
                     "temporal_activity_execution_latency_count"):
            assert samples(text, name), f"no {name} in the worker's metrics"
        for labels, _ in samples(text, "vcf_pathway_actions"):
            assert labels["workflow_type"] == "PatientPathway" and labels["namespace"] == "default"
        assert "pt-demo" not in text and "vcf-pathway-" not in text  # no patient or workflow id
        status, health = await asyncio.to_thread(get, f"{worker}/healthz")
        assert status == 200 and json.loads(health) == {"ok": True}
        status, ready = await asyncio.to_thread(get, f"{worker}/readyz")
        assert status == 200 and json.loads(ready) == {"ready": True}

        token = (tmp_path / "api-token").read_text().strip()
        status, _ = await asyncio.to_thread(get, f"{api}/v1/patients/pt-demo-0001",
                                            {"Authorization": f"Bearer {token}"})
        assert status == 200
        status, api_text = await asyncio.to_thread(get, f"{api}/metrics")  # no token needed
        assert status == 200
        reads = {labels["status"]: v for labels, v in samples(api_text, "vcf_api_requests_total")
                 if labels["route"] == "/v1/patients/{patient_id}" and labels["method"] == "GET"}
        assert reads == {"200": 1.0}, api_text
        assert samples(api_text, "vcf_api_request_duration_seconds_count")
        assert "pt-demo" not in api_text
        assert await runner.stop() == 0
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
