"""FHIR R4 in and out, through the ``fhir.resources.R4B`` models (R4-compatible shapes).

In: an Observation (pain score or DXA T-score) becomes the matching contract event.
Out: a pathway becomes a CarePlan whose activities reference its orders (relative references,
resolved against ``{base}v1/fhir/``); the orders themselves are in :mod:`api.fhir_orders`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from activities.order_model import Order
from api.errors import ApiError, field_errors

LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
PAIN_LOINC = "72514-3"
DXA_LOINC = "38267-1"
SUPPORTED_OBSERVATIONS = (f"LOINC {PAIN_LOINC} (pain severity 0-10, valueInteger)",
                          f"LOINC {DXA_LOINC} (DXA lumbar spine T-score, valueQuantity)")
# Only results that are final (or corrections of one) may drive clinical decisions.
ACCEPTED_OBSERVATION_STATUS = ("final", "amended", "corrected")
_PATIENT_REF = re.compile(r"^Patient/([A-Za-z0-9._-]{1,64})$")

# What the orders are for (clinical-reference §4); the pathologic work-up carries its own code.
VCF_REASONS = [
    {"coding": [{"system": ICD10CM, "code": "M80.08XA",
                 "display": "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter"}]},
    {"coding": [{"system": SNOMED, "code": "42942008", "display": "Compression fracture of vertebral column"}]},
]
_CAREPLAN_STATUS = {"running": "active", "paused": "on-hold", "completed": "completed",
                    "withdrawn": "revoked", "exited": "revoked"}


def dump(resource: Any) -> dict[str, Any]:
    """A FHIR model as R4 JSON (aliases such as ``for``, no empty fields)."""
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- In: Observation -> contract event ------------------------------------------------------

# Contract field -> the Observation field it came from, for error messages the sender can act on.
OBSERVATION_FIELDS = {"nrs": "valueInteger", "t_score": "valueQuantity.value", "observed_at": "effectiveDateTime",
                      "event_id": "id"}


def observation_to_event(raw: Any) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Validate an R4 Observation; return (patient id, contract event body, names of the
    sender's fields for the contract's); 422 otherwise.

    The event is built from the values as sent, not as the FHIR model coerced them, so the
    contract's strict checks apply: ``"valueInteger": true`` or ``"9"`` is refused, not read as 1 or 9.
    """
    if not isinstance(raw, dict):
        raise ApiError(422, "invalid Observation", ["body: expected a FHIR Observation JSON object"])
    if raw.get("resourceType") != "Observation":
        raise ApiError(422, "invalid Observation", ["resourceType: expected 'Observation'"])
    obs = _validated_observation(raw)
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
    event = _pain(raw) if supported == {PAIN_LOINC} else _dxa(raw)
    names = dict(OBSERVATION_FIELDS)
    event_id, names["event_id"] = _event_id(raw)
    if event_id is not None:
        event["event_id"] = event_id
    if "effectiveDateTime" in raw or "effectiveInstant" in raw:
        name = "effectiveDateTime" if "effectiveDateTime" in raw else "effectiveInstant"
        names["observed_at"] = name
        if not isinstance(raw[name], str):
            raise ApiError(422, "invalid Observation", [f"{name}: expected an ISO 8601 string with a time zone"])
        event["observed_at"] = raw[name]  # the contract checks it (a time zone is required there)
    return match.group(1), event, names


def _validated_observation(raw: dict[str, Any]) -> Observation:
    try:
        return Observation.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid Observation", field_errors(exc.errors())) from None
    except Exception as exc:  # noqa: BLE001 - the models raise KeyError etc. on odd input (e.g. contained)
        raise ApiError(422, "invalid Observation", [f"body: invalid FHIR resource ({type(exc).__name__})"]) from None


def _pain(raw: dict[str, Any]) -> dict[str, Any]:
    if raw.get("valueInteger") is None:
        raise ApiError(422, "invalid Observation", [f"valueInteger: required for LOINC {PAIN_LOINC} (0-10)"])
    return {"type": "pain", "nrs": raw["valueInteger"]}


def _dxa(raw: dict[str, Any]) -> dict[str, Any]:
    quantity = raw.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if value is None:
        raise ApiError(422, "invalid Observation", [f"valueQuantity.value: required for LOINC {DXA_LOINC} (T-score)"])
    return {"type": "dxa", "t_score": value}


def _event_id(raw: dict[str, Any]) -> tuple[Any, str]:
    """The event id as sent and the field it came from: ``id``, else the first identifier value."""
    if raw.get("id") is not None:
        return raw["id"], "id"
    for i, identifier in enumerate(raw.get("identifier") or []):
        if isinstance(identifier, dict) and identifier.get("value") is not None:
            return identifier["value"], f"identifier[{i}].value"
    return None, "id"


# --- Out: the pathway as a CarePlan (its orders: api.fhir_orders) ----------------------------

def care_plan_id(patient_id: str) -> str:
    """A FHIR-valid id for a patient's CarePlan (patient keys may hold ``_``, FHIR ids may not)."""
    return "vcf-" + hashlib.sha256(patient_id.encode()).hexdigest()[:24]


def care_plan(*, patient_id: str, status: str, title: str, guideline_version: str,
              enrolled_at: str | None, orders: list[Order], notes: list[str]) -> CarePlan:
    """The pathway as a CarePlan: one activity per order, each referencing its request resource."""
    activities = [{"reference": {"reference": f"{o.resource}/{o.id}", "display": o.title}} for o in orders]
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
