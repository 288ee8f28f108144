"""The HTTP API against the real Temporal dev server, a real worker and a real SQLite order book."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.order_book import OrderBook
from pathway.guideline import load_definition
from tests.helpers import make_worker
from tests.test_api_support import (  # noqa: F401  (stack is a fixture)
    applied_event_ids,
    build_app,
    enroll,
    enrollment,
    eventually,
    http_client,
    new_patient_id,
    stack,
    wait_for_orders,
)
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _names(r, *fields: str) -> None:
    """Assert an error answer in the one JSON shape, naming each field."""
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], list)
    for field in fields:
        assert any(line.startswith(f"{field}:") for line in body["detail"]), body


async def test_docs_are_open_and_everything_else_needs_a_token(stack):
    async with http_client(stack.app, authenticated=False) as anonymous:
        for path in ("/docs", "/openapi.json", "/healthz"):
            assert (await anonymous.get(path)).status_code == 200
        spec = (await anonymous.get("/openapi.json")).json()
        r = await anonymous.post("/v1/patients", json=enrollment(new_patient_id()))
        unauthenticated = [(await anonymous.get(path)).status_code for path in (
            "/v1/orders", "/v1/orders/x", f"/v1/patients/{new_patient_id()}", "/v1/patients/x/CarePlan",
            "/v1/patients/x/timeline")]
    assert set(unauthenticated) == {401}
    assert "/v1/patients/{patient_id}/events" in spec["paths"]
    assert "PainEvent" in spec["components"]["schemas"]
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    _names(r, "Authorization")
    r = await stack.http.get("/v1/orders", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    _names(r, "Authorization")
    r = await stack.http.get("/v1/orders", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


async def test_enrollment_is_idempotent_and_conflicts_are_refused(stack):
    patient = new_patient_id()
    r = await stack.http.post("/v1/patients", json=enrollment(patient))
    assert r.status_code == 201, r.text
    assert r.json()["workflow_id"] == workflow_id_for(patient)
    desc = await stack.env.client.get_workflow_handle(workflow_id_for(patient)).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING
    # The same data again (defaults spelled out or not) is the same enrollment.
    same = enrollment(patient)
    del same["red_flags"]
    r = await stack.http.post("/v1/patients", json=same)
    assert r.status_code == 200 and r.json()["created"] is False
    r = await stack.http.post("/v1/patients", json=enrollment(patient, pain_nrs=3))
    assert r.status_code == 409
    _names(r, "id")


@pytest.mark.parametrize("body, fields", [
    ({"id": "pt-x", "fracture_level": "L9", "height_loss_pct": 25, "pain_nrs": 8}, ["fracture_level"]),
    ({"id": "pt-x", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 11}, ["pain_nrs"]),
    ({"id": "Jane Doe", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8}, ["id"]),
    ({"fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8, "name": "x"}, ["id", "name"]),
    ([1, 2], ["body"]),
])
async def test_invalid_enrollment_names_the_field(stack, body, fields):
    r = await stack.http.post("/v1/patients", json=body)
    assert r.status_code == 422
    _names(r, *fields)


async def test_malformed_json_is_a_422_naming_the_body(stack):
    for raw in (b"", b"{", b"NaN", b"\xff\xfe"):
        r = await stack.http.post("/v1/patients", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, raw
        _names(r, "body")


async def test_events_are_accepted_once_and_applied_once(stack):
    patient = await enroll(stack.http)
    event = {"type": "pain", "nrs": 6, "event_id": "p-1"}
    r = await stack.http.post(f"/v1/patients/{patient}/events", json=event)
    assert r.status_code == 202 and r.json()["duplicate"] is False
    r = await stack.http.post(f"/v1/patients/{patient}/events", json=event)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    # Without an event_id the API gives one, and answers with it.
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "mobility", "bed_bound": False})
    assert r.status_code == 202
    generated = r.json()["event_id"]
    await eventually(lambda: _has(stack, patient, {"p-1", generated}))
    assert sorted(await applied_event_ids(stack.env, patient)) == sorted(["p-1", generated])
    state = (await stack.http.get(f"/v1/patients/{patient}")).json()
    assert state["live"] is True and state["latest_pain"]["nrs"] == 6


async def _has(stack, patient, ids):
    return ids <= set(await applied_event_ids(stack.env, patient))


async def test_event_errors(stack):
    patient = await enroll(stack.http)
    r = await stack.http.post(f"/v1/patients/{new_patient_id()}/events", json={"type": "pain", "nrs": 3})
    assert r.status_code == 404
    _names(r, "patient")
    cases = [({"type": "pain", "nrs": 12}, ["nrs"]), ({"type": "pain"}, ["nrs"]),
             ({"type": "weather", "sunny": True}, ["type"]), ({"nrs": 3}, ["type"]),
             ({"type": "pain", "nrs": 3, "observed_at": "2026-01-01T09:00:00"}, ["observed_at"]),
             ({"type": "pain", "nrs": 3, "observed_at": "2999-01-01T09:00:00Z"}, ["observed_at"]),
             ({"type": "mri", "etiology": "benign", "color": "red"}, ["etiology", "color"]),
             ("pain", ["body"])]
    for body, fields in cases:
        r = await stack.http.post(f"/v1/patients/{patient}/events", json=body)
        assert r.status_code == 422, (body, r.text)
        _names(r, *fields)


async def test_an_ended_pathway_takes_no_more_events(stack):
    patient = await enroll(stack.http)
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={
        "type": "clinician", "decision": "withdraw", "reason": "patient request", "author": "dr-1"})
    assert r.status_code == 202
    handle = stack.env.client.get_workflow_handle_for(PatientPathwayWorkflow.run, workflow_id_for(patient))
    assert (await handle.result()).status == "withdrawn"
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 2})
    assert r.status_code == 409
    _names(r, "pathway")
    # A worker is running: the closed workflow still answers its query.
    state = (await stack.http.get(f"/v1/patients/{patient}")).json()
    assert state["status"] == "withdrawn" and state["live"] is True and state["next_review"] is None


async def test_state_reports_where_the_patient_is(stack):
    patient = await enroll(stack.http, red_flags=["history_of_cancer"])

    async def enrolled_actions_taken():
        r = await stack.http.get(f"/v1/patients/{patient}")
        assert r.status_code == 200
        state = r.json()
        wanted = {"prescribe_first_line_analgesia", "order_mri", "order_dxa"}
        taken = wanted <= {a["kind"] for a in state["actions"]}
        return state if taken and wanted <= {o["kind"] for o in state["pending_orders"]} else None

    state = await eventually(enrolled_actions_taken)
    assert state["source"] == "workflow_query" and state["live"] is True
    assert state["phase"] == "acute" and 0 <= state["day"] < 1
    assert state["guideline_version"] == load_definition().version
    assert state["latest_pain"] == {"nrs": 8, "day": 0.0}
    assert state["next_review"]["day"] == 14
    for action in state["actions"]:
        assert action["rationale"] and action["citation"].startswith("Guideline:") and action["order_id"]
    pending = {o["kind"]: o for o in state["pending_orders"]}
    assert pending["order_mri"]["priority"] == "urgent"
    assert {"system": "http://www.ama-assn.org/go/cpt", "code": "72148",
            "display": "MRI lumbar spine without contrast"} in pending["order_mri"]["codes"]
    assert (await stack.http.get(f"/v1/patients/{new_patient_id()}")).status_code == 404


async def test_timeline(stack):
    patient = await enroll(stack.http)
    await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 5, "event_id": "t-1"})
    await eventually(lambda: _has(stack, patient, {"t-1"}))
    r = await stack.http.get(f"/v1/patients/{patient}/timeline")
    assert r.status_code == 200
    body = r.json()
    assert body["live"] is True
    assert [e["entry"] for e in body["entries"]][0] == "enrolled"
    assert any(e["entry"] == "event" and e["data"]["event_id"] == "t-1" for e in body["entries"])
    assert (await stack.http.get(f"/v1/patients/{new_patient_id()}/timeline")).status_code == 404


async def test_orders_and_acknowledgement(stack):
    patient = await enroll(stack.http)
    await wait_for_orders(stack.http, patient, {"order_dxa", "offer_brace"})
    bundle = (await stack.http.get("/v1/orders", params={"patient": patient, "status": "active"})).json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == len(bundle["entry"]) > 0
    order_id = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"
                    or "DXA" in e["resource"].get("code", {}).get("text", ""))
    r = await stack.http.post(f"/v1/orders/{order_id}/acknowledge", json={"reason": "reviewed", "author": "dr-7"})
    assert r.status_code == 200 and r.json()["meta"]["tag"][0]["code"] == "acknowledged"
    r = await stack.http.post(f"/v1/orders/{order_id}/acknowledge")
    assert r.status_code == 409
    _names(r, "order")
    r = await stack.http.post("/v1/orders/ord-nope/acknowledge")
    assert r.status_code == 404
    _names(r, "order")
    r = await stack.http.post(f"/v1/orders/{order_id}/acknowledge", json={"reason": 5, "why": "x"})
    assert r.status_code == 422
    _names(r, "reason", "why")
    assert stack.book.get(order_id)["status"] == "acknowledged"
    acked = (await stack.http.get("/v1/orders", params={"patient": patient, "status": "acknowledged"})).json()
    assert [e["resource"]["id"] for e in acked["entry"]] == [order_id]
    r = await stack.http.get("/v1/orders", params={"status": "pending"})
    assert r.status_code == 422
    _names(r, "status")
    assert (await stack.http.get(f"/v1/orders/{order_id}")).status_code == 200
    assert (await stack.http.get("/v1/orders/ord-nope")).status_code == 404


async def test_events_posted_while_no_worker_runs_are_applied_once_when_it_comes_back(dev_env, tmp_path):
    book = OrderBook(tmp_path / "orders.db")
    task_queue = f"api-down-{uuid.uuid4()}"
    patient = new_patient_id()
    async with http_client(build_app(dev_env, book, task_queue)) as http:
        # No worker on this queue: enrollment and events are still durably accepted.
        assert (await http.post("/v1/patients", json=enrollment(patient))).status_code == 201
        events = [{"type": "pain", "nrs": 6, "event_id": "e-1"},
                  {"type": "mobility", "bed_bound": True, "event_id": "e-2"},
                  {"type": "side_effect", "drug": "calcitonin", "effect": "dizziness", "event_id": "e-3"}]
        for event in events:
            assert (await http.post(f"/v1/patients/{patient}/events", json=event)).status_code == 202
        assert (await http.post(f"/v1/patients/{patient}/events", json=events[0])).status_code == 200
        state = (await http.get(f"/v1/patients/{patient}")).json()
        assert state["live"] is False and state["source"] == "search_attributes"
        assert any("no worker answered" in n for n in state["notes"])
        timeline = (await http.get(f"/v1/patients/{patient}/timeline")).json()
        assert timeline["live"] is False and timeline["entries"] == []
        plan = await http.get(f"/v1/patients/{patient}/CarePlan")
        assert plan.status_code == 200 and plan.json()["status"] == "active"

    # A second API instance that lost its registry: the duplicate reaches the workflow, which dedupes it.
    other = OrderBook(tmp_path / "other.db")
    async with http_client(build_app(dev_env, other, task_queue)) as http:
        assert (await http.post("/v1/patients", json=enrollment(patient))).status_code == 200
        assert (await http.post(f"/v1/patients/{patient}/events", json=events[1])).status_code == 202

    async with make_worker(dev_env, book, task_queue):
        handle = dev_env.client.get_workflow_handle_for(PatientPathwayWorkflow.run, workflow_id_for(patient))
        ids = await eventually(lambda: _applied_all(dev_env, patient, {"e-1", "e-2", "e-3"}))
        assert sorted(ids) == ["e-1", "e-2", "e-3"]
        state = await handle.query(PatientPathwayWorkflow.state)
        assert state.latest_pain.nrs == 6 and state.rejected == []
        async with http_client(build_app(dev_env, book, task_queue)) as http:
            r = await http.post(f"/v1/patients/{patient}/events", json={
                "type": "clinician", "decision": "withdraw", "reason": "moved away", "author": "dr-2"})
            assert r.status_code == 202
            assert (await handle.result()).status == "withdrawn"

    # The worker is gone and the pathway has ended: the result comes from the workflow history.
    async with http_client(build_app(dev_env, book, task_queue)) as http:
        state = (await http.get(f"/v1/patients/{patient}")).json()
        assert state["source"] == "workflow_result" and state["live"] is False
        assert state["status"] == "withdrawn" and state["phase"] == "withdrawn"
        assert {o["id"] for o in state["pending_orders"]} == {o["id"] for o in book.list(patient_id=patient, status="active")}
        assert any(a["kind"] == "stop_calcitonin" for a in state["actions"])
        assert state["latest_pain"]["nrs"] == 6 and state["guideline_version"]  # from the result alone
        assert (await http.post(f"/v1/patients/{patient}/events", json=events[0])).status_code == 200
        assert (await http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 1})).status_code == 409


async def _applied_all(env, patient, ids):
    try:
        applied = await applied_event_ids(env, patient)
    except Exception:
        return None
    return applied if ids <= set(applied) else None
