"""The HTTP API against the real Temporal dev server, a real worker and a real order book (the
``stack`` tests once on SQLite, once on PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from activities.order_book import OrderBook
from api.app import create_app
from pathway.guideline import load_definition
from tests.helpers import TEST_CONVERTER, eventually, make_worker
from tests.integration.api_support import (
    TOKEN,
    applied_event_ids,
    build_app,
    enroll,
    enrollment,
    http_client,
    new_patient_id,
    wait_for_orders,
)
from tests.integration.conftest import BACKENDS
from workflows.models import workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
STACK_BACKENDS = BACKENDS  # the registry and the audit trail on SQLite, then on PostgreSQL


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
    # Red flags are a set: listed in another order, the enrollment is the same.
    flagged = new_patient_id()
    flags = ["history_of_cancer", "fever_or_infection"]
    assert (await stack.http.post("/v1/patients", json=enrollment(flagged, red_flags=flags))).status_code == 201
    r = await stack.http.post("/v1/patients", json=enrollment(flagged, red_flags=flags[::-1]))
    assert r.status_code == 200 and r.json()["created"] is False, r.text
    r = await stack.http.post("/v1/patients", json=enrollment(flagged, red_flags=flags[:1]))
    assert r.status_code == 409
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
    # One instant written in two time zones is one event: its retry is a duplicate.
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    timed = {"type": "pain", "nrs": 6, "event_id": "p-tz", "observed_at": at.isoformat().replace("+00:00", "Z")}
    assert (await stack.http.post(f"/v1/patients/{patient}/events", json=timed)).status_code == 202
    elsewhere = {**timed, "observed_at": at.astimezone(timezone(timedelta(hours=1))).isoformat()}
    r = await stack.http.post(f"/v1/patients/{patient}/events", json=elsewhere)
    assert r.status_code == 200 and r.json()["duplicate"] is True, r.text
    later = {**timed, "observed_at": (at + timedelta(seconds=1)).isoformat()}
    assert (await stack.http.post(f"/v1/patients/{patient}/events", json=later)).status_code == 409
    # Without an event_id the API gives one, and answers with it.
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "mobility", "bed_bound": False})
    assert r.status_code == 202
    generated = r.json()["event_id"]
    await eventually(lambda: _has(stack, patient, {"p-1", "p-tz", generated}))
    assert sorted(await applied_event_ids(stack.env, patient)) == sorted(["p-1", "p-tz", generated])
    state = (await stack.http.get(f"/v1/patients/{patient}")).json()
    assert state["live"] is True and state["latest_pain"]["nrs"] == 6


async def _has(stack, patient, ids):
    return ids <= set(await applied_event_ids(stack.env, patient))


async def test_a_control_character_in_free_text_is_refused_and_a_nul_elsewhere_blocks_nothing(stack):
    """PostgreSQL cannot store a NUL. In an event's free text (drug, effect, reason, author) a control
    character is a 422 naming the field, on either backend; elsewhere (an event id, an acknowledgement's
    note, a path, a query) a NUL is written and compared as U+FFFD, never a 500 — before, on PostgreSQL,
    the order a side effect asked for was retried for ever and held the patient's later events."""
    patient = await enroll(stack.http)
    await wait_for_orders(stack.http, patient, {"order_dxa"})
    events = f"/v1/patients/{patient}/events"
    r = await stack.http.post(events, json={"type": "side_effect", "drug": "x\u0000y", "effect": "dizzy\u0007",
                                            "event_id": "nul-1"})
    assert r.status_code == 422
    _names(r, "drug", "effect")
    assert "U+0000" in r.json()["detail"][0] and "U+0007" in r.json()["detail"][1]
    r = await stack.http.post(events, json={"type": "pain", "nrs": 4, "event_id": "nul\u0000id"})
    assert r.status_code == 202 and r.json()["event_id"] == "nul\ufffdid"
    r = await stack.http.post(events, json={"type": "pain", "nrs": 4, "event_id": "nul\ufffdid"})
    assert r.status_code == 200 and r.json()["duplicate"] is True  # compared as it is stored: the same event
    order_id = next(o.id for o in stack.book.list(patient_id=patient) if o.kind == "order_dxa")
    r = await stack.http.post(events, json={"type": "dxa", "t_score": -2.6, "event_id": "dxa-1"})
    assert r.status_code == 202
    await eventually(lambda: _completed(stack, order_id))
    r = await stack.http.post(f"/v1/orders/{order_id}/acknowledge", json={"reason": "seen\u0000", "author": "dr-7"})
    assert r.status_code == 200 and stack.book.get(order_id).status_reason.endswith(": seen\ufffd")
    assert (await stack.http.get(f"/v1/fhir/Task/task-{order_id}%00")).status_code == 404
    r = await stack.http.get("/v1/orders", params={"patient": patient, "status": "active\x00"})
    assert r.status_code == 422
    _names(r, "query.status")
    r = await stack.http.post(events, json={"type": "side_effect", "drug": "calcitonin", "effect": "dizzy\nat night",
                                            "event_id": "ok-1"})
    assert r.status_code == 202
    await wait_for_orders(stack.http, patient, {"request_clinician_review"})
    assert (await stack.http.post(events, json={"type": "pain", "nrs": 9, "event_id": "ok-2"})).status_code == 202
    await eventually(lambda: _has(stack, patient, {"ok-1", "ok-2"}))
    assert (await stack.http.get(f"/v1/patients/{patient}")).json()["latest_pain"]["nrs"] == 9


async def _completed(stack, order_id: str) -> bool:
    return stack.book.get(order_id).status == "completed"


async def test_event_errors(stack):
    patient = await enroll(stack.http)
    r = await stack.http.post(f"/v1/patients/{new_patient_id()}/events", json={"type": "pain", "nrs": 3})
    assert r.status_code == 404
    _names(r, "patient")
    cases = [({"type": "pain", "nrs": 12}, ["nrs"]), ({"type": "pain"}, ["nrs"]),
             ({"type": "weather", "sunny": True}, ["type"]), ({"nrs": 3}, ["type"]),
             ({"type": "pain", "nrs": 3, "observed_at": "2026-01-01T09:00:00"}, ["observed_at"]),
             ({"type": "pain", "nrs": 3, "observed_at": "2999-01-01T09:00:00Z"}, ["observed_at"]),
             ({"type": "pain", "nrs": 3, "observed_at": "0001-01-01T00:00:00+14:00"}, ["observed_at"]),
             ({"type": "mri", "etiology": "benign", "color": "red"}, ["etiology", "color"]),
             # a bad time hides no other fault: every one is named in the one answer
             ({"type": "pain", "nrs": 11, "observed_at": "bad"}, ["observed_at", "nrs"]),
             ({"type": "pain", "nrs": 11, "observed_at": "2999-01-01T09:00:00Z"}, ["observed_at", "nrs"]),
             ("pain", ["body"])]
    for body, fields in cases:
        r = await stack.http.post(f"/v1/patients/{patient}/events", json=body)
        assert r.status_code == 422, (body, r.text)
        _names(r, *fields)
    # The order a result names: one of this patient's (404 otherwise) that such a result answers (409).
    r = await stack.http.post(f"/v1/patients/{patient}/events",
                              json={"type": "dxa", "t_score": -2.6, "fulfils": "order_dxa:nowhere"})
    assert r.status_code == 404 and r.json()["detail"] == ["fulfils: no such order of this patient"], r.text
    await eventually(lambda: asyncio.sleep(0, stack.book.get_by_key(f"{workflow_id_for(patient)}/order_dxa")))
    r = await stack.http.post(f"/v1/patients/{patient}/events",
                              json={"type": "mri", "etiology": "osteoporotic", "fulfils": "order_dxa"})
    assert r.status_code == 409 and r.json()["detail"][0].startswith("fulfils: order_dxa is not answered"), r.text


async def withdraw(stack, patient):
    """Withdraw the patient through the API and wait for the pathway's result."""
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={
        "type": "clinician", "decision": "withdraw", "reason": "patient request", "author": "dr-1"})
    assert r.status_code == 202
    handle = stack.env.client.get_workflow_handle_for(PatientPathwayWorkflow.run, workflow_id_for(patient))
    return await handle.result()


async def test_an_ended_pathway_takes_no_more_events(stack):
    patient = await enroll(stack.http)
    assert (await withdraw(stack, patient)).status == "withdrawn"
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 2})
    assert r.status_code == 409
    _names(r, "pathway")
    assert r.json()["detail"][0].startswith("pathway: withdrawn;")  # its own status, not Temporal's
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
    assert body["entries"][0]["entry"] == "enrolled"
    assert any(e["entry"] == "event" and e["data"]["event_id"] == "t-1" for e in body["entries"])
    assert (await stack.http.get(f"/v1/patients/{new_patient_id()}/timeline")).status_code == 404


async def test_an_unknown_path_or_method_is_answered_in_the_one_error_shape(stack):
    patient = new_patient_id()
    r = await stack.http.get(f"/v1/nowhere/{patient}")
    assert r.status_code == 404 and r.json() == {"error": "not found", "detail": [
        "path: no such endpoint (GET /openapi.json lists them)"]}
    assert patient not in r.text  # the path is not repeated: it may hold a patient id
    r = await stack.http.delete("/v1/orders")
    assert r.status_code == 405 and r.json()["detail"] == ["method: DELETE is not one this path takes"]
    assert "GET" in r.headers["allow"]


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
    assert stack.book.get(order_id).status == "acknowledged"
    acked = (await stack.http.get("/v1/orders", params={"patient": patient, "status": "acknowledged"})).json()
    assert [e["resource"]["id"] for e in acked["entry"]] == [order_id]
    r = await stack.http.get("/v1/orders", params={"status": "pending"})
    assert r.status_code == 422
    _names(r, "query.status")  # as every query error names its parameter
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
        assert any("no worker answered" in n for n in state["source_notes"])
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
        active = book.list(patient_id=patient, status="active")
        assert {o["id"] for o in state["pending_orders"]} == {o.id for o in active}
        assert any(a["kind"] == "request_clinician_review" and a["details"]["reason"] == "withdrawal_handover"
                   for a in state["actions"])  # the hand-over, calcitonin running on among the open orders
        assert state["latest_pain"]["nrs"] == 6 and state["guideline_version"]  # from the result alone
        assert (await http.post(f"/v1/patients/{patient}/events", json=events[0])).status_code == 200
        r = await http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 1})
        assert r.status_code == 409 and r.json()["detail"][0].startswith("pathway: withdrawn;")


async def _applied_all(env, patient, ids):
    try:
        applied = await applied_event_ids(env, patient)
    except Exception:  # noqa: BLE001 - the restarted worker may not answer queries yet
        return None
    return applied if ids <= set(applied) else None


async def test_an_unexpected_failure_is_a_500_json_answer_and_logs_its_type_only(dev_env, tmp_path, caplog):
    book = OrderBook(tmp_path / "orders.db")
    with sqlite3.connect(book.path) as db:  # a broken database: the order book's table is gone
        db.execute("DROP TABLE orders")
    caplog.set_level(logging.INFO, logger="api")
    async with http_client(build_app(dev_env, book, "unused")) as http:
        r = await http.get("/v1/orders", params={"patient": "pt-secret-text"})
    assert r.status_code == 500 and r.json() == {"error": "internal error", "detail": []}
    [bug] = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert bug.error_type == "OperationalError" and bug.exc_info is None
    assert not any("no such table" in rec.getMessage() or rec.exc_info for rec in caplog.records)
    # The request still gets its log line (route template, no query string).
    [line] = [rec for rec in caplog.records if rec.getMessage() == "request"]
    assert line.status == 500 and line.route == "/v1/orders"


async def test_a_locked_database_is_a_503_and_the_same_event_is_taken_once_it_is_back(dev_env, tmp_path):
    """Found by the drill: while another process held the database's write lock (the order book
    and the registry share the file), an event was answered 500 after SQLite's wait ran out. It is
    the service being unavailable, not a bug: 503 naming the database, and the same request again
    is taken once the lock is gone."""
    book = OrderBook(tmp_path / "orders.db")
    async with http_client(build_app(dev_env, book, f"api-{uuid.uuid4()}")) as http:
        patient = await enroll(http)
        event = {"type": "pain", "nrs": 5, "event_id": "locked-1"}
        holder = sqlite3.connect(book.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            r = await http.post(f"/v1/patients/{patient}/events", json=event)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert r.status_code == 503, r.text
        assert r.json()["detail"] == ["database: busy or unavailable; retry later"]
        assert r.headers["Retry-After"] == "1"
        r = await http.post(f"/v1/patients/{patient}/events", json=event)
        assert r.status_code == 202, r.text


async def test_a_failed_start_frees_the_patient_id(dev_env, tmp_path):
    book = OrderBook(tmp_path / "orders.db")
    task_queue = f"api-{uuid.uuid4()}"
    patient = new_patient_id()
    # A real client of the dev server, on a namespace that does not exist: starting fails.
    lost = await Client.connect(dev_env.client.service_client.config.target_host, namespace=f"nope-{uuid.uuid4().hex}",
                                data_converter=TEST_CONVERTER)
    app = create_app(client=lost, order_book=book, tokens={TOKEN}, task_queue=task_queue, rpc_timeout=5)
    async with http_client(app) as http:
        r = await http.post("/v1/patients", json=enrollment(patient, pain_nrs=3))
        assert r.status_code == 503, r.text
        assert (await http.get(f"/v1/patients/{patient}")).status_code == 404
    async with http_client(build_app(dev_env, book, task_queue)) as http:
        r = await http.post("/v1/patients", json=enrollment(patient))  # corrected
        assert r.status_code == 201, r.text
        assert (await http.post("/v1/patients", json=enrollment(patient))).status_code == 200


async def test_an_event_id_is_claimed_once_and_bound_to_its_event(stack):
    patient = await enroll(stack.http)
    event = {"type": "pain", "nrs": 4, "event_id": "race-1"}
    answers = await asyncio.gather(*(stack.http.post(f"/v1/patients/{patient}/events", json=event) for _ in range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [202]
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={**event, "nrs": 9})
    assert r.status_code == 409
    _names(r, "event_id")
    assert "different event" in r.json()["detail"][0]
    obs = {"resourceType": "Observation", "id": "race-1", "status": "final", "valueInteger": 7,
           "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
           "subject": {"reference": f"Patient/{patient}"}}
    r = await stack.http.post("/v1/fhir/Observation", json=obs)
    assert r.status_code == 409
    _names(r, "id")
    await eventually(lambda: _has(stack, patient, {"race-1"}))
    assert (await applied_event_ids(stack.env, patient)).count("race-1") == 1


async def test_an_event_the_pathway_refused_is_judged_again_when_sent_again(stack):
    """A pause sent while another is still on its way is accepted (202), then refused when it is
    applied (already paused). Sent again, it is judged again — before, the registry answered it as a
    duplicate "applied once" that never was."""
    patient = await enroll(stack.http)
    events = f"/v1/patients/{patient}/events"
    pause = {"type": "clinician", "decision": "pause", "reason": "admitted", "author": "dr-1"}
    first, second = await asyncio.gather(stack.http.post(events, json={**pause, "event_id": "pz-1"}),
                                         stack.http.post(events, json={**pause, "event_id": "pz-2"}))
    assert (first.status_code, second.status_code) == (202, 202)

    async def refused():
        state = (await stack.http.get(f"/v1/patients/{patient}")).json()
        return state if state["live"] and state["rejected"] else None

    [refusal] = (await eventually(refused))["rejected"]
    assert refusal["reason"] == "decision: the pathway is already paused"
    again = refusal["event_id"]
    r = await stack.http.post(events, json={**pause, "event_id": again})
    assert r.status_code == 202 and r.json()["duplicate"] is False  # sent on: judged (and refused) again
    assert (await stack.http.post(events, json={"type": "clinician", "decision": "resume", "reason": "home",
                                                "author": "dr-1", "event_id": "rz-1"})).status_code == 202
    await eventually(lambda: _has(stack, patient, {"rz-1"}))
    r = await stack.http.post(events, json={**pause, "event_id": again})
    assert r.status_code == 202  # judged again once more: now it applies
    await eventually(lambda: _has(stack, patient, {again}))
    r = await stack.http.post(events, json={**pause, "event_id": again})
    assert r.status_code == 200 and r.json()["duplicate"] is True  # applied: the same event again is a duplicate
    state = (await stack.http.get(f"/v1/patients/{patient}")).json()
    assert state["paused"] is True and state["rejected_dropped"] == 0
    assert [x["event_id"] for x in state["rejected"]] == [again, again]


async def test_a_pain_report_from_before_enrollment_or_a_result_from_before_the_fracture_is_a_422(stack):
    """Before, any past observed_at was taken and counted at day 0: a score of 1 from 2019 lowered the flare
    baseline, an MRI from 2015 closed the urgent MRI order."""
    patient = await enroll(stack.http, onset_days_before_enrollment=2)
    events = f"/v1/patients/{patient}/events"
    long_ago = "2015-06-01T09:00:00Z"
    r = await stack.http.post(events, json={"type": "pain", "nrs": 1, "observed_at": long_ago})
    assert r.status_code == 422 and "a pain report from before enrollment does not count" in r.json()["detail"][0]
    _names(r, "observed_at")
    r = await stack.http.post(events, json={"type": "mri", "etiology": "osteoporotic", "observed_at": long_ago})
    assert r.status_code == 422 and "before the fracture (its onset was 2 day(s) before enrollment)" in r.text
    obs = {"resourceType": "Observation", "id": "early-1", "status": "final", "valueInteger": 1,
           "effectiveDateTime": long_ago, "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
           "subject": {"reference": f"Patient/{patient}"}}
    r = await stack.http.post("/v1/fhir/Observation", json=obs)
    assert r.status_code == 422
    _names(r, "effectiveDateTime")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
    r = await stack.http.post(events, json={"type": "mri", "etiology": "osteoporotic", "observed_at": yesterday,
                                            "event_id": "mri-ed"})
    assert r.status_code == 202  # taken since the fracture: counted at day 0
    await eventually(lambda: _has(stack, patient, {"mri-ed"}))
    assert (await stack.http.get(f"/v1/patients/{patient}")).json()["rejected"] == []


async def test_a_trailing_slash_is_an_unknown_path_not_a_redirect(stack):
    """Starlette would redirect it before authentication and the audit, to the request's Host."""
    patient = await enroll(stack.http)
    async with http_client(stack.app, authenticated=False) as anonymous:
        for method, path in (("GET", f"/v1/patients/{patient}/"), ("POST", "/v1/patients/")):
            r = await anonymous.request(method, path, headers={"Host": "evil.example"})
            assert r.status_code in (401, 404) and "location" not in r.headers, (path, r.status_code)
    r = await stack.http.get(f"/v1/patients/{patient}/", headers={"Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers


async def test_an_event_refused_by_an_ended_pathway_is_not_remembered(stack):
    patient = await enroll(stack.http)
    await withdraw(stack, patient)
    for _ in range(2):  # the claim is given back: the same event is refused again, not "accepted"
        r = await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "pain", "nrs": 2, "event_id": "late"})
        assert r.status_code == 409 and r.json()["detail"] == ["pathway: withdrawn; no more events are taken"]


async def test_oversized_bodies_are_refused_before_they_are_read(stack):
    limit = 64 * 1024
    for body in (b" " * (limit + 1), b"{" + b" " * limit + b"}"):
        r = await stack.http.post("/v1/patients", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        _names(r, "body")

    async def chunks():  # no Content-Length: the stream itself is capped
        for _ in range(100):
            yield b" " * 1024
    r = await stack.http.post("/v1/patients", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    spec = (await stack.http.get("/openapi.json")).json()
    for path in ("/v1/patients", "/v1/patients/{patient_id}/events", "/v1/fhir/Observation",
                 "/v1/orders/{order_id}/acknowledge"):
        assert "413" in spec["paths"][path]["post"]["responses"], path
