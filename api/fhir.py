"""FHIR R4 in and out, through the ``fhir.resources.R4B`` models (R4-compatible shapes).

In: an Observation (pain score or DXA T-score) becomes the matching contract event.
Out: each order-book row becomes a ServiceRequest, MedicationRequest, CommunicationRequest or
Task carrying the seed's codes (CPT, RxNorm, ICD-10-CM); a pathway becomes a CarePlan whose
activities reference those orders. A code the seed marks unconfirmed (``None``) is given as
text only, never as a coding.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.communicationrequest import CommunicationRequest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from api.errors import ApiError

LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
PAIN_LOINC = "72514-3"
DXA_LOINC = "38267-1"
SUPPORTED_OBSERVATIONS = (f"LOINC {PAIN_LOINC} (pain severity 0-10, valueInteger)",
                          f"LOINC {DXA_LOINC} (DXA lumbar spine T-score, valueQuantity)")
# Only results that are final (or corrections of one) may drive clinical decisions.
ACCEPTED_OBSERVATION_STATUS = ("final", "amended", "corrected")
ORDER_STATUS_TAG = "urn:vcf-pathway:order-status"
ORDER_IDENTIFIER = "urn:vcf-pathway:order-id"
_PATIENT_REF = re.compile(r"^Patient/([A-Za-z0-9._-]{1,64})$")

# What the orders are for (clinical-reference §4); the pathologic work-up carries its own code.
VCF_REASONS = [
    {"coding": [{"system": ICD10CM, "code": "M80.08XA",
                 "display": "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter"}]},
    {"coding": [{"system": SNOMED, "code": "42942008", "display": "Compression fracture of vertebral column"}]},
]
_OWN_REASON = ("refer_pathologic_fracture_workup",)

_MODELS = {"ServiceRequest": ServiceRequest, "MedicationRequest": MedicationRequest,
           "CommunicationRequest": CommunicationRequest, "Task": Task}
_STATUS = {  # order-book status -> the resource's own status vocabulary
    "ServiceRequest": {"active": "active", "completed": "completed", "acknowledged": "completed",
                       "cancelled": "revoked", "stopped": "revoked"},
    "CommunicationRequest": {"active": "active", "completed": "completed", "acknowledged": "completed",
                             "cancelled": "revoked", "stopped": "revoked"},
    "MedicationRequest": {"active": "active", "completed": "completed", "acknowledged": "completed",
                          "cancelled": "cancelled", "stopped": "stopped"},
    "Task": {"active": "requested", "completed": "completed", "acknowledged": "completed",
             "cancelled": "cancelled", "stopped": "cancelled"},
}
_PRIORITIES = ("routine", "urgent", "asap", "stat")
_CAREPLAN_STATUS = {"running": "active", "paused": "on-hold", "completed": "completed",
                    "withdrawn": "revoked", "exited": "revoked"}


def dump(resource: Any) -> dict[str, Any]:
    """A FHIR model as R4 JSON (aliases such as ``for``, no empty fields)."""
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)


def _fhir_errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]


# --- In: Observation -> contract event ------------------------------------------------------

# Contract field -> the Observation field it came from, for error messages the sender can act on.
OBSERVATION_FIELDS = {"nrs": "valueInteger", "t_score": "valueQuantity.value", "observed_at": "effectiveDateTime",
                      "event_id": "id"}


def observation_to_event(raw: Any) -> tuple[str, dict[str, Any]]:
    """Validate an R4 Observation and return (patient id, contract event body); 422 otherwise."""
    if not isinstance(raw, dict):
        raise ApiError(422, "invalid Observation", ["body: expected a FHIR Observation JSON object"])
    if raw.get("resourceType") != "Observation":
        raise ApiError(422, "invalid Observation", ["resourceType: expected 'Observation'"])
    try:
        obs = Observation.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid Observation", _fhir_errors(exc)) from None
    except (ValueError, TypeError) as exc:
        raise ApiError(422, "invalid Observation", [f"body: {type(exc).__name__}"]) from None
    codes = {c.code for c in (obs.code.coding or []) if c.system == LOINC and c.code} if obs.code else set()
    supported = codes & {PAIN_LOINC, DXA_LOINC}
    if len(supported) != 1:
        raise ApiError(422, "unsupported Observation code", [
            "code: " + ("give one supported code, not both" if supported else "unsupported; supported codes are ")
            + ("" if supported else "; ".join(SUPPORTED_OBSERVATIONS))])
    if obs.status not in ACCEPTED_OBSERVATION_STATUS:
        raise ApiError(422, "invalid Observation",
                       [f"status: only {', '.join(ACCEPTED_OBSERVATION_STATUS)} results are applied"])
    match = _PATIENT_REF.match(obs.subject.reference or "") if obs.subject else None
    if not match:
        raise ApiError(422, "invalid Observation", ["subject.reference: expected 'Patient/{id}' of an enrolled patient"])
    event: dict[str, Any]
    if supported == {PAIN_LOINC}:
        if obs.valueInteger is None:
            raise ApiError(422, "invalid Observation", [f"valueInteger: required for LOINC {PAIN_LOINC} (0-10)"])
        event = {"type": "pain", "nrs": obs.valueInteger}
    else:
        value = obs.valueQuantity.value if obs.valueQuantity else None
        if value is None:
            raise ApiError(422, "invalid Observation", [f"valueQuantity.value: required for LOINC {DXA_LOINC} (T-score)"])
        event = {"type": "dxa", "t_score": float(value) if isinstance(value, Decimal) else value}
    event_id = obs.id or next((i.value for i in (obs.identifier or []) if i.value), None)
    if event_id:
        event["event_id"] = event_id
    # The sender's own text, so the contract checks it (a time zone is required there).
    effective = raw.get("effectiveDateTime") or raw.get("effectiveInstant")
    if effective:
        event["observed_at"] = effective
    return match.group(1), event


# --- Out: orders -> request resources -------------------------------------------------------

def _concept(order: dict[str, Any]) -> dict[str, Any]:
    confirmed = [{"system": c["system"], "code": c["code"], "display": c["display"]}
                 for c in order["codes"] if c.get("code")]
    unconfirmed = [c["display"] for c in order["codes"] if not c.get("code")]
    text = order["title"] + (f" ({'; '.join(unconfirmed)})" if unconfirmed else "")
    return {"coding": confirmed, "text": text} if confirmed else {"text": text}


def order_resource(order: dict[str, Any]) -> Any:
    """One order-book row as its FHIR request resource (validated R4B model)."""
    kind, resource = order["kind"], order["resource"]
    subject = {"reference": f"Patient/{order['patient_id']}"}
    priority = order["priority"] if order["priority"] in _PRIORITIES else "routine"
    notes = [{"text": f"Why: {order['rationale']}"}, {"text": f"Basis: {order['citation']}"},
             {"text": f"Pathway day {order['day']:g}; action {kind}"}]
    if order.get("status_reason"):
        notes.append({"text": f"Status ({order['status']}): {order['status_reason']}"})
    reasons = [] if kind in _OWN_REASON else VCF_REASONS
    body: dict[str, Any] = {
        "resourceType": resource, "id": order["id"],
        "meta": {"tag": [{"system": ORDER_STATUS_TAG, "code": order["status"]}]},
        "identifier": [{"system": ORDER_IDENTIFIER, "value": order["id"]}],
        "status": _STATUS[resource][order["status"]], "priority": priority,
        "authoredOn": order["created_at"], "note": notes,
    }
    if resource == "ServiceRequest":
        body.update(intent="order", code=_concept(order), subject=subject, reasonCode=reasons or None)
    elif resource == "MedicationRequest":
        body.update(intent="order", medicationCodeableConcept=_concept(order), subject=subject,
                    reasonCode=reasons or None)
        # A stop order forbids the drug from now on: R4's doNotPerform says exactly that.
        if kind == "stop_calcitonin":
            body["doNotPerform"] = True
    elif resource == "CommunicationRequest":
        body.update(subject=subject, payload=[{"contentString": order["title"]}], reasonCode=reasons or None)
    else:
        body.update(intent="order", code=_concept(order), description=order["title"], **{"for": subject})
        if reasons:
            body["reasonCode"] = reasons[0]
    if resource != "ServiceRequest" and order.get("status_reason"):
        body["statusReason"] = {"text": order["status_reason"]}
    body = {k: v for k, v in body.items() if v is not None}
    return _MODELS[resource].model_validate(body)


def orders_bundle(orders: list[dict[str, Any]], base_url: str) -> Bundle:
    """A searchset Bundle of the orders' request resources."""
    entries = [{"fullUrl": f"{base_url}v1/orders/{o['id']}", "resource": dump(order_resource(o)),
                "search": {"mode": "match"}} for o in orders]
    body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        body["entry"] = entries
    return Bundle.model_validate(body)


def care_plan_id(patient_id: str) -> str:
    """A FHIR-valid id for a patient's CarePlan (patient keys may hold ``_``, FHIR ids may not)."""
    return "vcf-" + hashlib.sha256(patient_id.encode()).hexdigest()[:24]


def care_plan(*, patient_id: str, status: str, title: str, guideline_version: str,
              enrolled_at: str | None, orders: list[dict[str, Any]], notes: list[str]) -> CarePlan:
    """The pathway as a CarePlan: one activity per order, each referencing its request resource."""
    activities = [{"reference": {"reference": f"{o['resource']}/{o['id']}", "display": o["title"]}}
                  for o in orders]
    body: dict[str, Any] = {
        "resourceType": "CarePlan", "id": care_plan_id(patient_id),
        "status": _CAREPLAN_STATUS.get(status, "unknown"), "intent": "plan",
        "title": title, "description": f"Osteoporotic VCF care pathway, guideline {guideline_version}; status {status}",
        "subject": {"reference": f"Patient/{patient_id}"},
        # The condition the plan addresses, carried inside it (there is no Condition endpoint).
        "contained": [{"resourceType": "Condition", "id": "vcf", "subject": {"reference": f"Patient/{patient_id}"},
                       "code": {"coding": [*VCF_REASONS[0]["coding"], *VCF_REASONS[1]["coding"]],
                                "text": "Osteoporotic vertebral compression fracture"}}],
        "addresses": [{"reference": "#vcf"}],
        "note": [{"text": n} for n in notes] or None,
    }
    if enrolled_at:
        body["period"] = {"start": enrolled_at}
    if activities:
        body["activity"] = activities
    return CarePlan.model_validate({k: v for k, v in body.items() if v is not None})
