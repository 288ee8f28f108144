"""FHIR workflow integration against the dev server, a real worker and a real loopback receiver:
orders as Tasks with a lifecycle, DiagnosticReports in, rest-hook Subscriptions pushed in order."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.order_book import OrderBook
from activities.orders import OrderActivities, OrderRequest
from activities.subscriptions import verify
from activities.task_model import TASK_STATUSES, TASK_TRANSITIONS, task_id_of
from api.fhir_codesystems import HEIGHT_LOSS, KYPHOSIS, MRI_ETIOLOGY, NEW_LEVEL, RADIOGRAPH_MEASURE
from api.routes.subscriptions import SECRET_EXTENSION
from pathway.contract import Action
from tests.helpers import eventually, make_worker
from tests.integration.api_support import build_app, enroll, http_client, timeline, wait_for_orders
from tests.integration.hook_receiver import Receiver
from workflows import search_attributes as sa
from workflows.models import PathwayResult, workflow_id_for
from workflows.subscription_delivery import subscription_workflow_id

SECRET = "test-secret-" + uuid.uuid4().hex


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hooks(dev_env, tmp_path_factory):
    """A worker; an app whose subscribers may fail for 60 s and one whose may fail for 3 s."""
    book = OrderBook(tmp_path_factory.mktemp("hooks") / "orders.db")
    task_queue = f"hooks-{uuid.uuid4()}"
    async with make_worker(dev_env, book, task_queue):
        patient_app = build_app(dev_env, book, task_queue, subscription_failure_window=60,
                                subscription_hosts=["127.0.0.1"], subscription_poll_seconds=0.5)
        strict_app = build_app(dev_env, book, task_queue, subscription_failure_window=3,
                               subscription_hosts=["127.0.0.1"], subscription_poll_seconds=0.5)
        async with http_client(patient_app) as http, http_client(strict_app) as strict:
            yield dev_env, book, http, strict


def subscription(endpoint: str, criteria: str, secret: str = SECRET, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                        "header": ["X-Clinic: spine"]},
            "extension": [{"url": SECRET_EXTENSION, "valueString": secret}], **more}


async def subscribe(http, receiver: Receiver, patient_id: str) -> dict[str, Any]:
    r = await http.post("/v1/fhir/Subscription", json=subscription(receiver.url, f"Task?patient={patient_id}"))
    assert r.status_code == 201, r.text
    sub = r.json()
    assert "secret" not in r.text and SECRET not in r.text
    assert sub["reason"] == "test"  # the subscriber's own reason, kept as sent
    await eventually(lambda: _status_is(http, sub["id"], "active"))
    return sub


async def _status_is(http, sub_id: str, status: str) -> dict[str, Any] | None:
    body = (await http.get(f"/v1/fhir/Subscription/{sub_id}")).json()
    return body if body["status"] == status else None


def week2_radiograph(book: OrderBook, patient_id: str) -> str:
    """The order the pathway places on day 14, placed by the same activity the workflow calls
    (the dev server's clock does not skip two weeks)."""
    receipt = ActivityEnvironment().run(OrderActivities(book).place_order, OrderRequest(
        workflow_id=workflow_id_for(patient_id), patient_id=patient_id,
        action=Action(id="order_radiograph:day-14", kind="order_radiograph", day=14, rationale="week 2",
                      citation="Monitoring and Follow-up"), title="X-ray lumbosacral spine", resource="ServiceRequest"))
    return receipt.order_id


async def enrollment_orders(env, book: OrderBook, patient_id: str) -> list[str]:
    """The ids of the orders of the enrollment, once every action taken so far has its order."""
    from workflows.patient_pathway import PatientPathwayWorkflow

    async def placed():
        handle = env.client.get_workflow_handle(workflow_id_for(patient_id))
        state = await handle.query(PatientPathwayWorkflow.state)
        orders = [o.id for o in book.list(patient_id=patient_id)]
        # Nothing in flight (no activity, no workflow task): actions are taken one step at a time,
        # and a count read between two of them would match too early.
        described = (await handle.describe()).raw_description
        settled = not described.pending_activities and not described.HasField("pending_workflow_task")
        return orders if settled and state.actions and len(state.orders) == len(state.actions) == len(orders) else None
    return await eventually(placed)


def changes_of(book: OrderBook, patient_id: str) -> list[tuple[str, str]]:
    """(order id, task status) of each change of the patient's orders, in the order they happened."""
    return [(c.order_id, c.task_status) for c in book.changes_after(0, patient_id=patient_id, limit=1000)]


def assert_signed_in_order_once(receiver: Receiver, expected: list[tuple[str, str]]) -> None:
    numbers = [d.event_number for d in receiver.received]
    assert len(numbers) == len(set(numbers)), f"a notification arrived twice: {numbers}"
    kept = receiver.by_event_number()
    assert sorted(kept) == list(range(1, len(expected) + 1))
    assert [(kept[n].order_id, kept[n].task_status) for n in sorted(kept)] == expected
    for delivery in kept.values():
        assert verify(SECRET, delivery.body, delivery.signature)
        assert delivery.headers["X-Clinic"] == "spine"
        assert delivery.bundle["identifier"]["value"].endswith(f"/{delivery.event_number}")


# --- Subscriptions ---------------------------------------------------------------------------

async def test_a_receiver_down_for_a_while_gets_enrollment_orders_then_week2_radiograph_in_order_once(hooks):
    env, book, http, _ = hooks
    receiver = Receiver()
    patient_id = f"pt-{uuid.uuid4().hex[:12]}"
    await subscribe(http, receiver, patient_id)
    receiver.down()
    await enroll(http, patient_id)
    await enrollment_orders(env, book, patient_id)
    await asyncio.sleep(3)  # down through several retries (1 s, 2 s, ...)
    assert receiver.received == []
    receiver.up()
    enrollment = changes_of(book, patient_id)
    await eventually(lambda: asyncio.sleep(0, len(receiver.by_event_number()) >= len(enrollment)), timeout=60)
    radiograph = week2_radiograph(book, patient_id)
    expected = changes_of(book, patient_id)
    assert expected[-1] == (radiograph, "requested") and len(expected) == len(enrollment) + 1
    await eventually(lambda: asyncio.sleep(0, len(receiver.by_event_number()) >= len(expected)), timeout=30)
    assert_signed_in_order_once(receiver, expected)
    assert {d.bundle["entry"][0]["resource"]["subject"]["reference"] for d in receiver.received
            if "subject" in d.bundle["entry"][0]["resource"]} == {f"Patient/{patient_id}"}
    # A history Bundle: each entry says how it came to be (request) and what came of it (response; R4 bdl-4).
    assert all(d.bundle["type"] == "history" and e["request"]["method"] == "PUT" and e["response"]["status"] == "200"
               for d in receiver.received for e in d.bundle["entry"])
    receiver.down()


async def test_a_receiver_failing_then_recovering_gets_everything_once(hooks):
    env, book, http, _ = hooks
    receiver = Receiver()
    receiver.fail_next = 4
    patient_id = f"pt-{uuid.uuid4().hex[:12]}"
    await subscribe(http, receiver, patient_id)
    await enroll(http, patient_id)
    await enrollment_orders(env, book, patient_id)
    expected = changes_of(book, patient_id)
    await eventually(lambda: asyncio.sleep(0, len(receiver.by_event_number()) >= len(expected)), timeout=60)
    assert receiver.attempts >= len(expected) + 4
    assert_signed_in_order_once(receiver, expected)
    receiver.down()


async def test_a_wrong_or_stale_signature_is_detectable(hooks):
    _, _, http, _ = hooks
    receiver = Receiver()
    patient_id = f"pt-{uuid.uuid4().hex[:12]}"
    await subscribe(http, receiver, patient_id)
    await enroll(http, patient_id)
    await eventually(lambda: asyncio.sleep(0, receiver.received))
    delivery = receiver.received[0]
    assert verify(SECRET, delivery.body, delivery.signature)
    assert not verify("another-secret-of-enough-length", delivery.body, delivery.signature)
    assert not verify(SECRET, delivery.body.replace(b"Patient/", b"Patient/x"), delivery.signature)
    t = int(delivery.signature.split(",")[0].removeprefix("t="))
    assert not verify(SECRET, delivery.body, delivery.signature, now=t + 3600)
    receiver.down()


async def test_a_subscription_in_error_resumes_where_it_stopped_when_reactivated(hooks):
    env, book, _, strict = hooks
    receiver = Receiver()
    patient_id = f"pt-{uuid.uuid4().hex[:12]}"
    sub = await subscribe(strict, receiver, patient_id)
    receiver.down()
    await enroll(strict, patient_id)
    errored = await eventually(lambda: _status_is(strict, sub["id"], "error"), timeout=60)
    assert "failed" in errored["error"]
    handle = env.client.get_workflow_handle(subscription_workflow_id(sub["id"]))
    assert (await handle.describe()).typed_search_attributes.get(sa.SUBSCRIPTION_STATUS) == "error"
    listed = (await strict.get("/v1/fhir/Subscription")).json()
    assert any(e["resource"]["id"] == sub["id"] and e["resource"]["status"] == "error" for e in listed["entry"])
    receiver.up()
    await asyncio.sleep(1)
    assert receiver.received == []  # nothing goes out while in error
    r = await strict.put(f"/v1/fhir/Subscription/{sub['id']}", json={**subscription(
        receiver.url.replace(str(receiver.port), "1"), sub["criteria"]), "status": "active"})
    assert r.status_code == 422 and "channel.endpoint" in r.text  # only the status may change
    for changed, element in ((subscription(receiver.url, sub["criteria"], "another-secret-of-enough-length"),
                              "extension: the shared secret cannot change"),
                             ({**subscription(receiver.url, sub["criteria"]), "reason": "another"}, "reason: cannot")):
        r = await strict.put(f"/v1/fhir/Subscription/{sub['id']}", json={**changed, "status": "active"})
        assert r.status_code == 422 and element in r.text, r.text  # never a 200 that changes nothing
    assert (await strict.get(f"/v1/fhir/Subscription/{sub['id']}")).json()["status"] == "error"
    r = await strict.put(f"/v1/fhir/Subscription/{sub['id']}", json={"resourceType": "Subscription",
                         "status": "active", "channel": {"type": "rest-hook"}})
    assert r.status_code == 200, r.text
    same = {**subscription(receiver.url, sub["criteria"]), "status": "active"}  # everything as it is: fine
    assert (await strict.put(f"/v1/fhir/Subscription/{sub['id']}", json=same)).status_code == 200
    expected = changes_of(book, patient_id)
    await eventually(lambda: asyncio.sleep(0, len(receiver.by_event_number()) >= len(expected)), timeout=60)
    assert_signed_in_order_once(receiver, expected)
    async def all_recorded():  # the count is recorded after the receiver's 2xx: a moment behind it
        body = await _status_is(strict, sub["id"], "active")
        return body if body and body["extension"][0]["valueInteger"] == len(expected) else None
    done = await eventually(all_recorded)
    assert "error" not in done
    receiver.down()


@pytest.mark.parametrize(("change", "element"), [
    ({"channel": {"type": "rest-hook", "endpoint": "ftp://127.0.0.1/x"}}, "channel.endpoint"),
    ({"channel": {"type": "email", "endpoint": "http://127.0.0.1/x"}}, "channel.type"),
    ({"criteria": "Patient?name=x"}, "criteria"),
    ({"criteria": "Task?status=requested"}, "criteria"),
    ({"extension": []}, "extension"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1/x", "header": ["X-VCF-Signature: t=1"]}},
     "channel.header[0]"),
    ({"topic": "x"}, "topic"),
    ({"reason": "  "}, "reason"),
    ({"reason": 7}, "reason"),
])
async def test_bad_subscriptions_are_refused_naming_the_element(hooks, change, element):
    """And an endpoint on a host that is not allowed is 403 (no delivery leaves loopback in tests)."""
    _, _, http, _ = hooks
    r = await http.post("/v1/fhir/Subscription", json={**subscription("http://127.0.0.1:9/hook", "Task"), **change})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0].startswith(f"{element}:")
    r = await http.post("/v1/fhir/Subscription", json=subscription("http://example.org/hook", "Task"))
    assert r.status_code == 403 and r.json()["detail"][0].startswith("channel.endpoint:")


# --- Tasks -----------------------------------------------------------------------------------

async def _mri_order(http, patient_id: str) -> dict[str, Any]:
    bundle = await wait_for_orders(http, patient_id, {"order_mri"})
    return next(e["resource"] for e in bundle["entry"] if "action order_mri" in str(e["resource"]["note"]))


async def test_every_task_transition_legal_and_illegal(hooks):
    _, book, _, _ = hooks
    moves = 0
    for current, wanted in itertools.product(TASK_STATUSES, TASK_STATUSES):
        order, _ = book.place(idempotency_key=f"wf/{uuid.uuid4()}", patient_id="pt-moves", workflow_id="wf",
                              action_id="a", kind="order_dxa", resource="ServiceRequest", priority="routine", day=0,
                              title="t", rationale="r", citation="c", details={}, codes=[])
        path = _path_to(current)
        for step in path:
            assert book.move_task(order.id, step, if_version=None, by="test").outcome == "moved"
        move = book.move_task(order.id, wanted, if_version=None, by="test")
        legal = wanted in TASK_TRANSITIONS[current]
        assert move.outcome == ("moved" if legal else "unchanged" if wanted == current else "illegal"), \
            (current, wanted)
        if move.outcome == "illegal":
            assert f"the task is {current}" in (move.reason or "")
        moves += 1
    assert moves == len(TASK_STATUSES) ** 2


def _path_to(status: str) -> list[str]:
    """Legal moves from requested to ``status`` (breadth first)."""
    paths: dict[str, list[str]] = {"requested": []}
    queue = ["requested"]
    while queue:
        here = queue.pop(0)
        for nxt in TASK_TRANSITIONS[here]:  # type: ignore[index]
            if nxt not in paths:
                paths[nxt] = [*paths[here], nxt]
                queue.append(nxt)
    return paths[status]


async def test_task_put_answers_409_on_an_illegal_move_and_412_on_a_stale_etag(hooks):
    _, _, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    url = f"/v1/fhir/Task/{task_id_of(order['id'])}"
    read = await http.get(url)
    assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
    task = read.json()
    assert task["status"] == "requested" and task["focus"]["reference"] == f"ServiceRequest/{order['id']}"
    assert task["for"]["reference"] == f"Patient/{patient_id}"
    r = await http.put(url, json={**task, "status": "in-progress"}, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 409 and "the task is requested" in r.json()["detail"][0]
    r = await http.put(url, json={**task, "status": "accepted", "businessStatus": {"text": "booked"}},
                       headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.headers["etag"] == 'W/"2"' and r.json()["businessStatus"]["text"] == "booked"
    r = await http.put(url, json={**task, "status": "in-progress"}, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 412 and r.headers["etag"] == 'W/"2"'
    r = await http.put(url, json={**task, "status": "in-progress"}, headers={"If-Match": 'W/"2"'})
    assert r.status_code == 200 and r.json()["status"] == "in-progress"
    r = await http.put(url, json={**task, "id": "task-ord-other", "status": "on-hold"})
    assert r.status_code == 422 and r.json()["detail"][0].startswith("id:")
    history = (await http.get(f"{url}/_history")).json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["in-progress", "accepted", "requested"]
    assert history["entry"][0]["resource"]["owner"]["display"] == "token"
    # The MRI result completes its task; a completed task moves no more.
    r = await http.post(f"/v1/patients/{patient_id}/events", json={"type": "mri", "etiology": "osteoporotic"})
    assert r.status_code == 202
    done = await eventually(lambda: _task_status_is(http, url, "completed"))
    r = await http.put(url, json={**done, "status": "cancelled"})
    assert r.status_code == 409 and "final status" in r.json()["detail"][0]
    audit = (await http.get("/v1/audit", params={"patient": patient_id})).json()
    assert any("PUT /v1/fhir/Task/{task_id}" in str(e["resource"]["entity"]) for e in audit["entry"])


async def _task_status_is(http, url: str, status: str) -> dict[str, Any] | None:
    body = (await http.get(url)).json()
    return body if body["status"] == status else None


async def test_acknowledge_accepts_the_task(hooks):
    _, _, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    assert (await http.post(f"/v1/orders/{order['id']}/acknowledge")).status_code == 200
    task = (await http.get(f"/v1/fhir/Task/{task_id_of(order['id'])}")).json()
    assert task["status"] == "accepted"


async def _order_status_is(book: OrderBook, order_id: str, status: str) -> bool:
    return book.get(order_id).status == status


async def test_a_result_is_acknowledged_in_turn_closing_the_loop(hooks):
    """Request, result, acknowledgement (clinical-reference §5)."""
    _, book, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    r = await http.post(f"/v1/patients/{patient_id}/events", json={"type": "mri", "etiology": "osteoporotic"})
    assert r.status_code == 202
    await eventually(lambda: _order_status_is(book, order["id"], "completed"))
    r = await http.post(f"/v1/orders/{order['id']}/acknowledge", json={"reason": "result reviewed", "author": "dr-1"})
    assert r.status_code == 200 and r.json()["status"] == "completed"  # the ServiceRequest: done, now acknowledged
    assert r.json()["meta"]["tag"][0]["code"] == "acknowledged"
    acknowledged = book.get(order["id"])
    assert acknowledged.status == "acknowledged"
    assert "acknowledged by dr-1: result reviewed" in acknowledged.status_reason
    task = (await http.get(f"/v1/fhir/Task/{task_id_of(order['id'])}")).json()
    assert task["status"] == "completed" and task["meta"]["versionId"] == "3"  # placed, resulted, acknowledged
    again = await http.post(f"/v1/orders/{order['id']}/acknowledge")
    assert again.status_code == 409 and "status is acknowledged" in again.text


async def test_a_result_still_fulfils_an_order_acknowledged_before_it(hooks):
    _, book, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    acknowledged = await http.post(f"/v1/orders/{order['id']}/acknowledge")
    assert acknowledged.status_code == 200
    # Not done yet: the study still waits for its result (the order follows its Task, now accepted).
    assert acknowledged.json()["status"] == "active" and acknowledged.json()["meta"]["tag"][0]["code"] == "acknowledged"
    assert (await http.get(f"/v1/fhir/Task/{task_id_of(order['id'])}")).json()["status"] == "accepted"
    assert book.get(order["id"]).status == "acknowledged"
    r = await http.post(f"/v1/patients/{patient_id}/events", json={"type": "mri", "etiology": "osteoporotic"})
    assert r.status_code == 202
    await eventually(lambda: _order_status_is(book, order["id"], "completed"))
    task = (await http.get(f"/v1/fhir/Task/{task_id_of(order['id'])}")).json()
    assert task["status"] == "completed"
    assert (await http.get(f"/v1/orders/{order['id']}")).json()["status"] == "completed"
    assert (await http.post(f"/v1/orders/{order['id']}/acknowledge")).status_code == 200  # and the result in turn


async def test_a_rejected_imaging_task_alerts_the_care_team_once_and_stops_its_overdue_clock(hooks):
    env, book, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    url = f"/v1/fhir/Task/{task_id_of(order['id'])}"
    body = {"resourceType": "Task", "status": "rejected", "statusReason": {"text": "scanner out of service"}}
    assert (await http.put(url, json=body)).status_code == 200
    assert (await http.put(url, json=body)).status_code == 200  # repeated: the pathway acts once

    async def alerted():
        alerts = [o for o in book.list(patient_id=patient_id) if o.kind == "alert_task_refused"]
        notes = [t for t in await timeline(env, patient_id) if t.data.get("id") == "task-refused:order_mri"]
        return (alerts, notes) if alerts and notes else None
    alerts, notes = await eventually(alerted)
    assert len(alerts) == 1 and len(notes) == 1 and alerts[0].details["order_id"] == order["id"]
    assert "overdue-result clock is stopped" in alerts[0].rationale
    assert book.get(order["id"]).status == "cancelled"  # type: ignore[union-attr]
    await asyncio.sleep(0.5)
    assert len([o for o in book.list(patient_id=patient_id) if o.kind == "alert_task_refused"]) == 1
    # A malformed refusal never fails the workflow: it is recorded as rejected.
    handle = env.client.get_workflow_handle(workflow_id_for(patient_id))
    await handle.signal("task_refused", {"order_id": order["id"], "status": "lost"})
    state = await eventually(lambda: _rejected(env, patient_id, "task_refused"))
    assert state.status == "running"


async def _rejected(env, patient_id: str, event_type: str):
    from workflows.patient_pathway import PatientPathwayWorkflow
    state = await env.client.get_workflow_handle(workflow_id_for(patient_id)).query(PatientPathwayWorkflow.state)
    return state if any(r.event_type == event_type for r in state.rejected) else None


# --- DiagnosticReport ------------------------------------------------------------------------

def mri_report(patient_id: str, order_id: str, etiology: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": f"rep-{uuid.uuid4().hex[:10]}", "status": "final",
            "code": {"text": "MRI lumbar spine"}, "subject": {"reference": f"Patient/{patient_id}"},
            "basedOn": [{"reference": f"ServiceRequest/{order_id}"}],
            "conclusionCode": [{"coding": [{"system": MRI_ETIOLOGY, "code": etiology}]}], **more}


def radiograph_report(patient_id: str, order_id: str, measures: dict[str, Any]) -> dict[str, Any]:
    contained = []
    for i, (code, value) in enumerate(measures.items()):
        obs = {"resourceType": "Observation", "id": f"m{i}", "status": "final",
               "code": {"coding": [{"system": RADIOGRAPH_MEASURE, "code": code}]}}
        obs.update({"valueString": value} if code == NEW_LEVEL else {"valueQuantity": {"value": value}})
        contained.append(obs)
    return {"resourceType": "DiagnosticReport", "id": f"rep-{uuid.uuid4().hex[:10]}", "status": "final",
            "code": {"text": "X-ray lumbosacral spine"}, "subject": {"reference": f"Patient/{patient_id}"},
            "basedOn": [{"reference": f"ServiceRequest/{order_id}"}], "contained": contained,
            "result": [{"reference": f"#m{i}"} for i in range(len(contained))]}


async def test_a_malignant_mri_report_exits_the_pathway_like_the_mri_event(hooks):
    env, _, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    r = await http.post("/v1/fhir/DiagnosticReport", json=mri_report(patient_id, order["id"], "malignant"))
    assert r.status_code == 202, r.text
    result = await env.client.get_workflow_handle(workflow_id_for(patient_id), result_type=PathwayResult).result()
    assert result.status == "exited"
    assert "refer_pathologic_fracture_workup" in {a.kind for a in result.actions}
    mri = [t for t in await timeline(env, patient_id) if t.entry == "event"]
    assert mri[-1].data["type"] == "mri" and mri[-1].data["etiology"] == "malignant"
    task = (await http.get(f"/v1/fhir/Task/{task_id_of(order['id'])}")).json()
    assert task["status"] == "completed"  # the result completed the order's task


async def test_a_radiograph_report_becomes_the_radiograph_event(hooks):
    env, book, http, _ = hooks
    patient_id = await enroll(http)
    await wait_for_orders(http, patient_id, {"order_mri"})
    order_id = week2_radiograph(book, patient_id)
    report = radiograph_report(patient_id, order_id, {HEIGHT_LOSS: 30, KYPHOSIS: 12.5, NEW_LEVEL: "L3"})
    r = await http.post("/v1/fhir/DiagnosticReport", json=report)
    assert r.status_code == 202, r.text
    assert (await http.post("/v1/fhir/DiagnosticReport", json=report)).status_code == 200  # the same id again

    async def applied():
        events = [t for t in await timeline(env, patient_id) if t.entry == "event" and t.data["type"] == "radiograph"]
        return events[0] if events else None
    event = await eventually(applied)
    assert (event.data["height_loss_pct"], event.data["kyphosis_deg"], event.data["new_fracture_level"]) == \
        (30, 12.5, "L3") and event.data["event_id"] == report["id"]


async def test_a_report_fulfils_the_order_it_names_not_the_newest(hooks):
    """basedOn names the enrollment MRI while the MRI of a new (thoracic) level also waits: the report
    fulfils the order it names, and the L2 fracture's MRI counts as resulted."""
    env, book, http, _ = hooks
    patient_id = await enroll(http, fracture_level="L2")
    film = {"type": "radiograph", "height_loss_pct": 25, "new_fracture_level": "T12"}
    assert (await http.post(f"/v1/patients/{patient_id}/events", json=film)).status_code == 202

    def orders() -> dict[str, Any]:
        return {o.action_id: o for o in book.list(patient_id=patient_id) if o.kind == "order_mri"}
    await eventually(lambda: asyncio.sleep(0, "order_mri:T12" in orders() or None))
    enrollment_mri = orders()["order_mri"]
    r = await http.post("/v1/fhir/DiagnosticReport", json=mri_report(patient_id, enrollment_mri.id, "osteoporotic"))
    assert r.status_code == 202, r.text
    await eventually(lambda: asyncio.sleep(0, orders()["order_mri"].status == "completed" or None))
    assert orders()["order_mri:T12"].status == "active"
    events = [t for t in await timeline(env, patient_id) if t.entry == "event" and t.data["type"] == "mri"]
    assert events[0].data["fulfils"] == "order_mri"


@pytest.mark.parametrize(("mutate", "element"), [
    (lambda r: r.update(performerX=[]), "performerX"),
    (lambda r: r["conclusionCode"][0]["coding"].append({"system": MRI_ETIOLOGY, "code": "osteoporotic"}),
     "conclusionCode"),
    (lambda r: r["conclusionCode"][0]["coding"].__setitem__(0, {"system": MRI_ETIOLOGY, "code": "tumour"}),
     "conclusionCode"),
    (lambda r: r.update(conclusionCode=[{"coding": [{"system": "http://snomed.info/sct", "code": "42942008"}]}]),
     "conclusionCode"),
    (lambda r: r.update(status="preliminary"), "status"),
    (lambda r: r.update(basedOn=[]), "basedOn"),
    (lambda r: r.update(subject={"reference": "Group/x"}), "subject.reference"),
    (lambda r: r.update(effectiveDateTime="2026-01"), "effectiveDateTime"),
    (lambda r: r.update(contained=[{"resourceType": "Observation", "id": "h", "status": "final",
                                    "code": {"coding": [{"system": RADIOGRAPH_MEASURE, "code": HEIGHT_LOSS}]},
                                    "valueQuantity": {"value": 20}}], result=[{"reference": "#h"}]),
     "conclusionCode"),
])
async def test_bad_mri_reports_are_refused_naming_the_element_and_nothing_is_applied(hooks, mutate, element):
    env, _, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    report = mri_report(patient_id, order["id"], "malignant")
    mutate(report)
    r = await http.post("/v1/fhir/DiagnosticReport", json=report)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0].startswith(f"{element}"), r.json()
    assert not [t for t in await timeline(env, patient_id) if t.entry in ("event", "rejected")]


@pytest.mark.parametrize(("measures", "element"), [
    ({KYPHOSIS: 10}, "result"),
    ({HEIGHT_LOSS: 130}, f"{HEIGHT_LOSS} value"),
    ({HEIGHT_LOSS: 20, NEW_LEVEL: "L9"}, f"{NEW_LEVEL} value"),
])
async def test_bad_radiograph_reports_are_refused_naming_the_element(hooks, measures, element):
    _, book, http, _ = hooks
    patient_id = await enroll(http)
    await wait_for_orders(http, patient_id, {"order_mri"})
    order_id = week2_radiograph(book, patient_id)
    r = await http.post("/v1/fhir/DiagnosticReport", json=radiograph_report(patient_id, order_id, measures))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0].startswith(element), r.json()


async def test_a_report_with_null_elements_is_refused_naming_them(hooks):
    """FHIR JSON leaves an absent element out: a null is refused, as the Observation route refuses it."""
    _, book, http, _ = hooks
    patient_id = await enroll(http)
    await wait_for_orders(http, patient_id, {"order_mri"})
    report = {**radiograph_report(patient_id, week2_radiograph(book, patient_id), {HEIGHT_LOSS: 20}),
              "issued": None, "conclusion": None}
    r = await http.post("/v1/fhir/DiagnosticReport", json=report)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [f"{name}: null is not allowed (FHIR JSON leaves an absent element out)"
                                  for name in ("issued", "conclusion")]


async def test_a_report_must_answer_the_kind_of_order_it_names(hooks):
    _, _, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    report = radiograph_report(patient_id, order["id"], {HEIGHT_LOSS: 20})
    r = await http.post("/v1/fhir/DiagnosticReport", json=report)
    assert r.status_code == 409 and "names a order_mri order" in r.json()["detail"][0]  # as an event's fulfils
    report["basedOn"] = [{"reference": "ServiceRequest/ord-00000000000000000000"}]
    r = await http.post("/v1/fhir/DiagnosticReport", json=report)
    assert r.status_code == 404 and r.json()["detail"][0].startswith("basedOn[0].reference:")


async def test_the_code_systems_are_published(hooks):
    _, _, http, _ = hooks
    for system, code in ((MRI_ETIOLOGY, "malignant"), (RADIOGRAPH_MEASURE, HEIGHT_LOSS)):
        found = (await http.get(f"/v1/fhir/CodeSystem/{system.rsplit('/', 1)[1]}")).json()
        assert found["url"] == system and code in {c["code"] for c in found["concept"]}
    assert (await http.get("/v1/fhir/CodeSystem/other")).status_code == 404


async def test_a_task_rejected_after_the_pathway_ended_still_alerts_the_care_team_once(hooks):
    env, book, http, _ = hooks
    patient_id = await enroll(http)
    order = await _mri_order(http, patient_id)
    withdraw = {"type": "clinician", "decision": "withdraw", "reason": "moved away", "author": "dr-1"}
    assert (await http.post(f"/v1/patients/{patient_id}/events", json=withdraw)).status_code == 202
    handle = env.client.get_workflow_handle(workflow_id_for(patient_id))
    await handle.result()  # withdrawn: the pathway has ended
    url = f"/v1/fhir/Task/{task_id_of(order['id'])}"
    body = {"resourceType": "Task", "status": "rejected", "statusReason": {"text": "scanner out of service"}}
    assert (await http.put(url, json=body)).status_code == 200
    assert (await http.put(url, json=body)).status_code == 200  # repeated: still one task
    (alert,) = [o for o in book.list(patient_id=patient_id) if o.kind == "alert_task_refused"]
    assert alert.priority == "urgent" and alert.details["order_id"] == order["id"]
    assert "MRI" in alert.title and "had already ended" in alert.rationale


async def test_the_refusal_alert_names_the_order_as_it_went_out_for_a_thoracic_fracture(hooks):
    _, book, http, _ = hooks
    patient_id = await enroll(http, fracture_level="T8")
    order = await _mri_order(http, patient_id)
    body = {"resourceType": "Task", "status": "rejected", "statusReason": {"text": "claustrophobia"}}
    assert (await http.put(f"/v1/fhir/Task/{task_id_of(order['id'])}", json=body)).status_code == 200

    async def alerted():
        return [o for o in book.list(patient_id=patient_id) if o.kind == "alert_task_refused"] or None
    (alert,) = await eventually(alerted)
    assert "thoracic" in alert.title and "lumbar" not in alert.title, alert.title
