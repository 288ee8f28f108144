"""FHIR R4 in (Observation) and out (orders Bundle, CarePlan), round-tripped through the R4B models."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.task import Task

from activities.order_model import Order
from api.fhir import ICD10CM, SNOMED, dump
from pathway.guideline import load_definition
from tests.helpers import eventually
from tests.integration.api_support import applied_event_ids, enroll, new_patient_id, timeline, wait_for_orders
from workflows.models import workflow_id_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
ENROLLMENT_KINDS = {"prescribe_first_line_analgesia", "start_calcitonin", "order_mri", "order_dxa",
                    "advise_early_mobilization", "prescribe_calcium_vitamin_d", "prescribe_bisphosphonate"}


def observation(patient: str, code: str = "72514-3", **fields) -> dict:
    """A final R4 Observation of one LOINC code for a patient."""
    body = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": datetime.now(UTC).isoformat(timespec="seconds")}  # after the enrollment
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def test_pain_and_dxa_observations_become_contract_events(stack):
    patient = await enroll(stack.http)
    pain = observation(patient, id="obs-1", valueInteger=4)
    r = await stack.http.post("/v1/fhir/Observation", json=pain, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 202, r.text
    assert r.json()["event_id"] == "obs-1" and r.json()["type"] == "pain"
    r = await stack.http.post("/v1/fhir/Observation", json=pain)  # the same Observation again
    assert r.status_code == 200 and r.json()["duplicate"] is True
    dxa = observation(patient, "38267-1", identifier=[{"system": "urn:lab", "value": "dxa-77"}],
                      valueQuantity={"value": -2.7, "unit": "{T-score}"})
    r = await stack.http.post("/v1/fhir/Observation", json=dxa)
    assert r.status_code == 202 and r.json()["event_id"] == "dxa-77"
    await eventually(lambda: _applied(stack, patient, {"obs-1", "dxa-77"}))
    events = {e.data["event_id"]: e.data for e in await timeline(stack.env, patient) if e.entry == "event"}
    assert events["obs-1"]["nrs"] == 4 and events["obs-1"]["type"] == "pain"
    sent = datetime.fromisoformat(dxa["effectiveDateTime"])
    assert events["dxa-77"]["t_score"] == -2.7 and datetime.fromisoformat(events["dxa-77"]["observed_at"]) == sent
    # The DXA result fulfilled the DXA order (closed loop), in the activity its decision step runs
    # after the event is recorded.

    async def dxa_completed():
        return [o.status for o in stack.book.list(patient_id=patient) if o.kind == "order_dxa"] == ["completed"]

    assert await eventually(dxa_completed)
    [dxa_order] = [o for o in stack.book.list(patient_id=patient) if o.kind == "order_dxa"]
    assert dxa_order.status_reason.endswith(": dxa-77]")  # traceable to the Observation that fulfilled it


async def _applied(stack, patient, ids):
    return ids <= set(await applied_event_ids(stack.env, patient))


@pytest.mark.parametrize("change, field", [
    ({"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}, "code"),
    ({"valueInteger": 11}, "valueInteger"),
    ({"valueInteger": "seven"}, "valueInteger"),
    ({"valueInteger": None, "valueQuantity": {"value": 5}}, "valueInteger"),
    ({"subject": {"reference": "Group/1"}}, "subject.reference"),
    ({"subject": None}, "subject.reference"),
    ({"status": "preliminary"}, "status"),
    ({"status": "bogus"}, "status"),
    ({"resourceType": "Patient"}, "resourceType"),
    ({"effectiveDateTime": "2026-01-05T09:00:00"}, "effectiveDateTime"),
    ({"effectiveDateTime": "0001-01-01T00:00:00+14:00"}, "effectiveDateTime"),
    ({"colour": "blue"}, "colour"),
    # The contract's strict checks see the values as sent, not as the FHIR model coerced them.
    ({"valueInteger": True}, "valueInteger"),
    ({"valueInteger": "9"}, "valueInteger"),
    ({"effectiveDateTime": 1767603600}, "effectiveDateTime"),
    ({"valueInteger": None, "code": {"coding": [{"system": "http://loinc.org", "code": "38267-1"}]},
      "valueQuantity": {"value": "-2"}}, "valueQuantity.value"),
    ({"valueInteger": None, "code": {"coding": [{"system": "http://loinc.org", "code": "38267-1"}]},
      "valueQuantity": {"value": True}}, "valueQuantity.value"),
    # The event id is reported under the field it came from.
    ({"identifier": [{"system": "urn:x"}, {"value": "x" * 200}]}, "identifier[1].value"),
    # Input the FHIR models trip over (a KeyError inside them) is still the sender's error.
    ({"contained": [{"resourceType": "Foo"}]}, "body: invalid FHIR resource"),
])
async def test_invalid_observations_are_422_naming_the_field(stack, change, field):
    body = {**observation("pt-anyone", valueInteger=5), **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await stack.http.post("/v1/fhir/Observation", json=body)
    assert r.status_code == 422, r.text
    assert any(line.startswith(f"{field}") for line in r.json()["detail"]), r.json()
    if field == "valueInteger":
        assert not any(line.startswith("nrs") for line in r.json()["detail"])
    if field == "code":
        assert "72514-3" in r.json()["detail"][0] and "38267-1" in r.json()["detail"][0]


async def test_observation_for_an_unknown_patient_is_404(stack):
    r = await stack.http.post("/v1/fhir/Observation", json=observation(new_patient_id(), valueInteger=3))
    assert r.status_code == 404
    assert r.json()["detail"] == ["subject.reference: not enrolled (POST /v1/patients first)"]  # the element sent


async def test_orders_bundle_round_trips_with_the_reference_codes(stack):
    patient = await enroll(stack.http)
    await wait_for_orders(stack.http, patient, ENROLLMENT_KINDS)
    r = await stack.http.get("/v1/orders", params={"patient": patient})
    assert r.headers["content-type"].startswith("application/fhir+json")
    raw = r.json()
    bundle = Bundle.model_validate(copy.deepcopy(raw))
    assert dump(bundle) == raw
    by_kind = {}
    for entry in bundle.entry:
        text = next(n.text for n in entry.resource.note if n.text.startswith("Pathway day"))
        by_kind[text.split("action ")[1]] = entry.resource
    assert {type(r).__name__ for r in by_kind.values()} >= {"ServiceRequest", "MedicationRequest",
                                                            "CommunicationRequest"}
    mri = by_kind["order_mri"]
    assert mri.get_resource_type() == "ServiceRequest" and mri.intent == "order"
    assert [(c.system, c.code) for c in mri.code.coding] == [(CPT, "72148")]
    assert mri.subject.reference == f"Patient/{patient}"
    # A compression fracture, whose osteoporotic cause the MRI is to confirm: no ICD-10-CM M80.08XA yet.
    assert [(c.system, c.code) for rc in mri.reasonCode for c in rc.coding] == [(SNOMED, "42942008")]
    assert mri.instantiatesCanonical[0].endswith("|vcf-1.2") and "lumbar" in mri.instantiatesCanonical[0]
    # Two drugs are two concepts: ingredients of a contained Medication, one coding each.
    for kind, drugs in (("prescribe_first_line_analgesia", ["161", "5640"]),
                        ("prescribe_calcium_vitamin_d", ["1897", "2418"])):
        order = by_kind[kind]
        assert isinstance(order, MedicationRequest) and order.medicationCodeableConcept is None
        assert order.medicationReference.reference == "#med"
        [medication] = order.contained
        assert medication.get_resource_type() == "Medication" and medication.id == "med"
        assert [[(c.system, c.code) for c in i.itemCodeableConcept.coding] for i in medication.ingredient] \
            == [[(RXNORM, d)] for d in drugs]
    assert [(c.system, c.code) for c in by_kind["prescribe_bisphosphonate"].medicationCodeableConcept.coding] \
        == [(RXNORM, "115264")]
    # An unconfirmed code (None in the seed) is text only, never a coding.
    calcitonin = by_kind["start_calcitonin"].medicationCodeableConcept
    assert calcitonin.coding is None and "verify" in calcitonin.text
    assert [(c.system, c.code) for c in by_kind["order_dxa"].code.coding] == [(CPT, "77080")]
    assert by_kind["advise_early_mobilization"].payload[0].contentString


async def test_care_plan_references_the_orders(stack):
    patient = await enroll(stack.http)
    bundle = await wait_for_orders(stack.http, patient, ENROLLMENT_KINDS)
    r = await stack.http.get(f"/v1/patients/{patient}/CarePlan")
    assert r.status_code == 200
    raw = r.json()
    plan = CarePlan.model_validate(copy.deepcopy(raw))
    assert dump(plan) == raw
    assert plan.status == "active" and plan.intent == "plan" and plan.subject.reference == f"Patient/{patient}"
    referenced = {a.reference.reference for a in plan.activity}
    expected = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    assert expected <= referenced
    assert plan.addresses[0].reference == "#vcf" and plan.contained[0].get_resource_type() == "Condition"
    assert (await stack.http.get(f"/v1/patients/{new_patient_id()}/CarePlan")).status_code == 404


def _place(stack, patient: str, kind: str, key: str, **details) -> Order:
    """An order of the seed's action ``kind`` written straight to the real order book (as the
    worker's activity would), for the orders a test cannot wait months of pathway time for."""
    spec = load_definition().actions[kind]
    row, _ = stack.book.place(
        idempotency_key=f"{workflow_id_for(patient)}/{key}", patient_id=patient, workflow_id=workflow_id_for(patient),
        action_id=key, kind=kind, resource=spec.resource, priority="routine", day=90, title=spec.title,
        rationale="test", citation="Guideline: test", details=details, codes=[c.model_dump() for c in spec.codes])
    return row


async def _resource(stack, resource_type: str, order_id: str):
    r = await stack.http.get(f"/v1/fhir/{resource_type}/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("procedure, cpt", [("balloon_kyphoplasty", "22514"), ("vertebroplasty", "22511")])
async def test_augmentation_referral_carries_the_suggested_procedure_only(stack, procedure, cpt):
    patient = await enroll(stack.http)
    order = _place(stack, patient, "refer_vertebral_augmentation", f"aug-{procedure}", suggested_procedure=procedure)
    codes = (await _resource(stack, "ServiceRequest", order.id))["code"]["coding"]
    assert [(c["system"], c["code"]) for c in codes] == [(CPT, cpt)]


@pytest.mark.parametrize("etiology", ["malignant", "infection"])
async def test_pathologic_work_up_gives_its_diagnosis_as_the_reason(stack, etiology):
    patient = await enroll(stack.http)
    r = await stack.http.post(f"/v1/patients/{patient}/events", json={"type": "mri", "etiology": etiology})
    assert r.status_code == 202
    bundle = await wait_for_orders(stack.http, patient, {"refer_pathologic_fracture_workup"})
    [referral] = [e["resource"] for e in bundle["entry"]
                  if any("refer_pathologic_fracture_workup" in n["text"] for n in e["resource"]["note"])]
    assert "coding" not in referral["code"] and referral["code"]["text"].startswith("Urgent referral")
    [reason] = referral["reasonCode"]
    if etiology == "malignant":
        assert [(c["system"], c["code"]) for c in reason["coding"]] == [(ICD10CM, "M84.58XA")]
    else:
        assert "coding" not in reason and "infection" in reason["text"]


async def test_references_resolve_and_tasks_merge_their_reasons(stack):
    patient = await enroll(stack.http)
    bundle = await wait_for_orders(stack.http, patient, ENROLLMENT_KINDS)
    mri = next(e["resource"] for e in bundle["entry"]
               if e["resource"].get("code", {}).get("text", "").startswith("MRI"))
    # The overdue-result task the worker writes (activities.orders.escalate_overdue_result).
    overdue, _ = stack.book.place(
        idempotency_key=f"{workflow_id_for(patient)}/overdue:order_mri", patient_id=patient,
        workflow_id=workflow_id_for(patient), action_id="overdue:order_mri", kind="escalate_overdue_result",
        resource="Task", priority="urgent", day=30, title="Result overdue: order_mri", rationale="test",
        citation="Guideline: test", details={"order_id": mri["id"], "order_action_id": "order_mri", "order_day": 0},
        codes=[])
    bundle = (await stack.http.get("/v1/orders", params={"patient": patient})).json()
    for entry in bundle["entry"]:
        url = entry["fullUrl"]
        assert url == f"http://api.test/v1/fhir/{entry['resource']['resourceType']}/{entry['resource']['id']}"
        assert (await stack.http.get(url)).json() == entry["resource"]
    plan = (await stack.http.get(f"/v1/patients/{patient}/CarePlan")).json()
    for activity in plan["activity"]:  # relative references, against the FHIR base
        assert (await stack.http.get(f"/v1/fhir/{activity['reference']['reference']}")).status_code == 200
    task = await _resource(stack, "Task", overdue.id)
    assert task["focus"] == {"reference": f"ServiceRequest/{mri['id']}"}
    assert (await stack.http.get(f"/v1/fhir/{task['focus']['reference']}")).json()["id"] == mri["id"]
    assert {(c["system"], c["code"]) for c in task["reasonCode"]["coding"]} == {(SNOMED, "42942008")}
    Task.model_validate(task)
    # The resource type is part of the address: another type, or an unknown one, is 404.
    assert (await stack.http.get(f"/v1/fhir/Task/{mri['id']}")).status_code == 404
    assert (await stack.http.get(f"/v1/fhir/Patient/{mri['id']}")).status_code == 404
    assert (await stack.http.get("/v1/fhir/ServiceRequest/ord-nope")).status_code == 404


async def test_orders_are_paged(stack):
    patient = await enroll(stack.http)
    everything = await wait_for_orders(stack.http, patient, ENROLLMENT_KINDS)
    assert "next" not in {link["relation"] for link in everything["link"]}
    seen, url = [], "/v1/orders"
    params = {"patient": patient, "_count": 2}
    while url:
        page = (await stack.http.get(url, params=params)).json()
        Bundle.model_validate(copy.deepcopy(page))
        assert page["total"] == everything["total"] and len(page["entry"]) <= 2
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        params = None
    assert seen == [e["resource"]["id"] for e in everything["entry"]]
    for bad in ({"_count": 0}, {"_count": 101}, {"_offset": -1}, {"_offset": 1001}, {"_count": "x"},
                {"_cursor": "not-a-cursor"}):
        r = await stack.http.get("/v1/orders", params=bad)
        assert r.status_code == 422 and r.json()["detail"][0].startswith("query._"), r.text
