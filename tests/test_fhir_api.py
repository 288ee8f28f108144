"""FHIR R4 in (Observation) and out (orders Bundle, CarePlan), round-tripped through the R4B models."""

from __future__ import annotations

import copy

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.medicationrequest import MedicationRequest

from api.fhir import dump
from tests.test_api_support import (  # noqa: F401  (stack is a fixture)
    applied_event_ids,
    enroll,
    eventually,
    new_patient_id,
    stack,
    timeline,
    wait_for_orders,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
ENROLLMENT_KINDS = {"prescribe_first_line_analgesia", "start_calcitonin", "order_mri", "order_dxa",
                    "advise_early_mobilization"}


def observation(patient: str, code: str = "72514-3", **fields) -> dict:
    """A final R4 Observation of one LOINC code for a patient."""
    body = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2026-01-05T09:00:00+00:00"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def test_pain_and_dxa_observations_become_contract_events(stack):
    patient = await enroll(stack.http)
    r = await stack.http.post("/v1/fhir/Observation", json=observation(patient, id="obs-1", valueInteger=4),
                              headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 202, r.text
    assert r.json()["event_id"] == "obs-1" and r.json()["type"] == "pain"
    r = await stack.http.post("/v1/fhir/Observation", json=observation(patient, id="obs-1", valueInteger=4))
    assert r.status_code == 200 and r.json()["duplicate"] is True
    dxa = observation(patient, "38267-1", identifier=[{"system": "urn:lab", "value": "dxa-77"}],
                      valueQuantity={"value": -2.7, "unit": "{T-score}"})
    r = await stack.http.post("/v1/fhir/Observation", json=dxa)
    assert r.status_code == 202 and r.json()["event_id"] == "dxa-77"
    await eventually(lambda: _applied(stack, patient, {"obs-1", "dxa-77"}))
    events = {e.data["event_id"]: e.data for e in await timeline(stack.env, patient) if e.entry == "event"}
    assert events["obs-1"]["nrs"] == 4 and events["obs-1"]["type"] == "pain"
    assert events["dxa-77"]["t_score"] == -2.7 and events["dxa-77"]["observed_at"].startswith("2026-01-05T09:00:00")
    # The DXA result fulfilled the DXA order (closed loop).
    assert [o["status"] for o in stack.book.list(patient_id=patient) if o["kind"] == "order_dxa"] == ["completed"]


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
    ({"colour": "blue"}, "colour"),
])
async def test_invalid_observations_are_422_naming_the_field(stack, change, field):
    body = {**observation("pt-anyone", valueInteger=5), **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await stack.http.post("/v1/fhir/Observation", json=body)
    assert r.status_code == 422, r.text
    assert any(line.startswith(f"{field}") for line in r.json()["detail"]), r.json()
    if field == "code":
        assert "72514-3" in r.json()["detail"][0] and "38267-1" in r.json()["detail"][0]


async def test_observation_for_an_unknown_patient_is_404(stack):
    r = await stack.http.post("/v1/fhir/Observation", json=observation(new_patient_id(), valueInteger=3))
    assert r.status_code == 404


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
    assert any(c.code == "M80.08XA" for rc in mri.reasonCode for c in rc.coding)
    analgesia = by_kind["prescribe_first_line_analgesia"]
    assert isinstance(analgesia, MedicationRequest)
    assert {(c.system, c.code) for c in analgesia.medicationCodeableConcept.coding} == {(RXNORM, "161"), (RXNORM, "5640")}
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
