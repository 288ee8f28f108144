"""The clinical safety rules through the API: decision notes in the state and the timeline,
clinician-review Tasks with their reason, results after the end, the guideline as FHIR."""

from __future__ import annotations

import copy

import pytest
from fhir.resources.R4B.activitydefinition import ActivityDefinition
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.plandefinition import PlanDefinition
from fhir.resources.R4B.task import Task

from activities.task_model import task_id_of
from api.fhir import dump
from pathway.guideline import load_definition
from pathway.plan_definition import REVIEW_REASON_SYSTEM, canonical
from tests.helpers import eventually
from tests.integration.api_support import enroll, wait_for_orders

pytestmark = pytest.mark.asyncio(loop_scope="session")
WITHDRAW = {"type": "clinician", "decision": "withdraw", "reason": "moved away", "author": "dr-a"}


async def _orders_of(stack, patient: str, kind: str):
    return [o for o in stack.book.list(patient_id=patient) if o.kind == kind]


async def test_a_side_effect_becomes_a_review_task_with_its_reason(stack):
    patient = await enroll(stack.http)
    r = await stack.http.post(f"/v1/patients/{patient}/events",
                              json={"type": "side_effect", "drug": "calcitonin", "effect": "dizziness, fell"})
    assert r.status_code == 202
    bundle = await wait_for_orders(stack.http, patient, {"request_clinician_review"})
    [task] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert Task.model_validate(copy.deepcopy(task))
    assert task["reasonCode"]["coding"] == [{"system": REVIEW_REASON_SYSTEM, "code": "side_effect",
                                             "display": "Side effect reported"}]
    assert task["instantiatesCanonical"].endswith("|vcf-1.2")
    # Posted seconds after enrollment: the day reads as a person would say it ("day 0", not "day 7.2e-05").
    assert {"text": "Pathway day 0; action request_clinician_review"} in task["note"]
    plan = (await stack.http.get(f"/v1/patients/{patient}/CarePlan")).json()
    assert {"reference": f"Task/{task['id']}", "display": "Clinician review requested"} in \
        [a["reference"] for a in plan["activity"]]


async def test_decision_notes_show_in_the_state_the_timeline_and_the_care_plan(stack):
    patient = await enroll(stack.http)
    mri = {"type": "mri", "etiology": "osteoporotic", "event_id": "m-1"}
    assert (await stack.http.post(f"/v1/patients/{patient}/events", json=mri)).status_code == 202

    async def noted():
        state = (await stack.http.get(f"/v1/patients/{patient}")).json()
        return state if state["live"] and any(n["id"].endswith(":osteoporotic") for n in state["notes"] or []) else None

    state = await eventually(noted)
    [note] = [n for n in state["notes"] if n["id"].startswith("mri:")]
    assert note["text"] == "MRI: osteoporotic fracture confirmed." and note["citation"].startswith("Guideline:")
    timeline = (await stack.http.get(f"/v1/patients/{patient}/timeline")).json()
    assert [n["id"] for n in timeline["notes"]] == [n["id"] for n in state["notes"]]
    plan = (await stack.http.get(f"/v1/patients/{patient}/CarePlan")).json()
    CarePlan.model_validate(copy.deepcopy(plan))
    assert plan["instantiatesCanonical"] == [canonical(load_definition())]
    [condition] = plan["contained"]
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert any("MRI: osteoporotic fracture confirmed." in n["text"] for n in plan["note"])


async def test_before_the_mri_the_care_plans_condition_is_provisional(stack):
    patient = await enroll(stack.http)
    await wait_for_orders(stack.http, patient, {"order_mri"})
    plan = (await stack.http.get(f"/v1/patients/{patient}/CarePlan")).json()
    [condition] = plan["contained"]
    assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert "presumed osteoporotic" in condition["code"]["text"]
    assert [c["code"] for c in condition["code"]["coding"]] == ["42942008"]


async def test_after_withdrawal_a_malignant_mri_fulfils_its_order_and_raises_an_urgent_task(stack):
    patient = await enroll(stack.http)
    await wait_for_orders(stack.http, patient, {"order_mri"})
    assert (await stack.http.post(f"/v1/patients/{patient}/events", json=WITHDRAW)).status_code == 202

    async def ended():
        return (await stack.http.post(f"/v1/patients/{patient}/events",
                                      json={"type": "pain", "nrs": 3})).status_code == 409

    await eventually(ended)
    handover = await _orders_of(stack, patient, "request_clinician_review")
    assert [o.details["reason"] for o in handover] == ["withdrawal_handover"]
    assert "order_mri" in {o["kind"] for o in handover[0].details["open_orders"]}
    # Radiology performs the exam and completes its task; the report follows. Before, the completed task
    # closed the order, and the malignant report was refused (409): no urgent task, the result lost.
    [mri_order] = await _orders_of(stack, patient, "order_mri")
    for status in ("accepted", "in-progress", "completed"):
        r = await stack.http.put(f"/v1/fhir/Task/{task_id_of(mri_order.id)}", json={"resourceType": "Task",
                                                                                  "status": status})
        assert r.status_code == 200, r.text
    mri = {"type": "mri", "etiology": "malignant", "event_id": "late-mri"}
    r = await stack.http.post(f"/v1/patients/{patient}/events", json=mri)
    assert r.status_code == 202, r.text
    after = r.json()["after_end"]
    [mri_order] = await _orders_of(stack, patient, "order_mri")
    assert after["pathway_status"] == "withdrawn" and after["fulfilled_orders"] == [mri_order.id]
    assert mri_order.status == "completed"
    [task] = await _orders_of(stack, patient, "escalate_result_after_end")
    assert task.id == after["escalation_task"] and task.priority == "urgent" and task.details["etiology"] == "malignant"
    fhir_task = (await stack.http.get(f"/v1/orders/{task.id}")).json()
    assert fhir_task["focus"] == {"reference": f"ServiceRequest/{mri_order.id}"}  # the order the result fulfilled
    again = await stack.http.post(f"/v1/patients/{patient}/events", json=mri)  # the same result again: once
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["after_end"] == after  # a client that sends it again learns what it did, done once
    assert len(await _orders_of(stack, patient, "escalate_result_after_end")) == 1
    plan = (await stack.http.get(f"/v1/patients/{patient}/CarePlan")).json()
    [condition] = plan["contained"]
    assert condition["code"]["text"] == "Pathologic vertebral compression fracture, malignant on MRI"
    assert any("mri result after the pathway ended: malignant" in n["text"] for n in plan["note"])  # as the state
    # The ended workflow never saw it: the timeline and the state still show it, after the end, once.
    timeline = (await stack.http.get(f"/v1/patients/{patient}/timeline")).json()
    kinds = [e["entry"] for e in timeline["entries"]]
    [late] = [e for e in timeline["entries"] if e["data"].get("after_end")]
    assert kinds.index("ended") < timeline["entries"].index(late)
    assert late["entry"] == "note" and late["data"]["id"].startswith("after_end:mri:")
    assert late["data"]["event_id"] == "late-mri" and late["data"]["task_id"] == task.id
    assert "mri result after the pathway ended: malignant; fulfilled order_mri" in late["summary"]
    assert late["data"]["id"] in [n["id"] for n in timeline["notes"]]
    state = (await stack.http.get(f"/v1/patients/{patient}")).json()
    assert [n["id"] for n in state["notes"] if n["id"].startswith("after_end:")] == [late["data"]["id"]]
    # Acknowledging the result later does not move when it came.
    assert (await stack.http.post(f"/v1/orders/{mri_order.id}/acknowledge", json={})).status_code == 200
    entries = (await stack.http.get(f"/v1/patients/{patient}/timeline")).json()["entries"]
    assert [e["at"] for e in entries if e["data"].get("after_end")] == [late["at"]]
    # A second MRI finds no open MRI order: 409, naming why.
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "mri", "etiology": "osteoporotic"})
    assert r.status_code == 409 and any("no open mri order" in d for d in r.json()["detail"])


async def test_the_guideline_is_published_as_fhir(stack):
    r = await stack.http.get("/v1/fhir/PlanDefinition")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    bundle = r.json()
    Bundle.model_validate(copy.deepcopy(bundle))
    versions = {e["resource"]["version"]: e["resource"] for e in bundle["entry"]}
    assert versions["vcf-1.2"]["status"] == "active" and versions["vcf-1.1"]["status"] == "retired"
    plan = (await stack.http.get(f"/v1/fhir/PlanDefinition/{versions['vcf-1.2']['id']}")).json()
    assert dump(PlanDefinition.model_validate(copy.deepcopy(plan))) == plan
    first = next(a["definitionCanonical"] for a in plan["action"] if a.get("definitionCanonical"))
    url, version = first.split("|")
    activity_id = f"{url.rsplit('/', 1)[1]}-{version}"  # ids carry the version: every release is served
    activity = (await stack.http.get(f"/v1/fhir/ActivityDefinition/{activity_id}")).json()
    ActivityDefinition.model_validate(copy.deepcopy(activity))
    assert (await stack.http.get("/v1/fhir/PlanDefinition/nope")).status_code == 404
    assert (await stack.http.get("/v1/fhir/ActivityDefinition/nope")).status_code == 404
    # A canonical (an order's instantiatesCanonical) resolves by search, pinned to its version or not.
    found = (await stack.http.get("/v1/fhir/ActivityDefinition", params={"url": first})).json()
    assert found["resourceType"] == "Bundle" and [e["resource"] for e in found["entry"]] == [activity]
    every = (await stack.http.get("/v1/fhir/ActivityDefinition", params={"url": url})).json()
    assert activity in [e["resource"] for e in every["entry"]] and every["total"] >= 1
    unpinned = (await stack.http.get("/v1/fhir/ActivityDefinition", params={"url": url, "version": version})).json()
    assert [e["resource"] for e in unpinned["entry"]] == [activity]
    missing = await stack.http.get("/v1/fhir/ActivityDefinition")
    assert missing.status_code == 422 and missing.json()["detail"] == ["query.url: Field required"]


async def test_a_thoracic_patients_orders_name_their_region(stack):
    patient = await enroll(stack.http, fracture_level="T8")
    bundle = await wait_for_orders(stack.http, patient, {"order_mri"})
    [mri] = [e["resource"] for e in bundle["entry"] if e["resource"].get("code", {}).get("text", "").startswith("MRI")]
    assert [c["code"] for c in mri["code"]["coding"]] == ["72146"]
    assert "thoracic" in mri["instantiatesCanonical"][0]


@pytest.mark.parametrize("etiology, text, codes, status", [
    ("malignant", "Pathologic vertebral compression fracture, malignant on MRI", ["M84.58XA", "42942008"], "confirmed"),
    ("indeterminate", "Vertebral compression fracture, MRI indeterminate: pathologic fracture not ruled out",
     ["42942008"], "provisional"),
])  # fmt: skip
async def test_the_care_plans_condition_follows_what_the_mri_said(stack, etiology, text, codes, status):
    patient = await enroll(stack.http)
    mri = {"type": "mri", "etiology": etiology}
    assert (await stack.http.post(f"/v1/patients/{patient}/events", json=mri)).status_code == 202

    async def read() -> dict | None:
        state = (await stack.http.get(f"/v1/patients/{patient}")).json()
        return state if state["status"] == "exited" or any(n["id"].startswith("mri:") for n in state["notes"] or []) \
            else None

    await eventually(read)
    [condition] = (await stack.http.get(f"/v1/patients/{patient}/CarePlan")).json()["contained"]
    assert condition["code"]["text"] == text and "MRI pending" not in condition["code"]["text"]
    assert [c["code"] for c in condition["code"]["coding"]] == codes
    assert condition["verificationStatus"]["coding"][0]["code"] == status
