"""FHIR R4 out, through the ``fhir.resources.R4B`` models (R4-compatible shapes): a pathway
becomes a CarePlan whose activities reference its orders (relative references, resolved against
``{base}v1/fhir/``). The orders themselves: :mod:`api.fhir_orders`; Observations in:
:mod:`api.fhir_observation`; what OpenAPI says of these answers: :mod:`api.fhir_models`.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from fhir.resources.R4B.careplan import CarePlan

from activities.order_model import Order
from pathway.guideline import PathwayDefinition, released_definitions
from pathway.plan_definition import ICD10CM, SNOMED, canonical

# What the orders are for (docs/clinical-decisions.md#codes); the pathologic work-up carries its own code.
# The fracture is a compression fracture from the start; it is osteoporotic (ICD-10-CM M80.08XA) only
# once an MRI says so, until then presumed (the CarePlan's condition is provisional), and pathologic
# once an MRI says malignant (M84.58XA) or infection.
COMPRESSION_FRACTURE = {"system": SNOMED, "code": "42942008", "display": "Compression fracture of vertebral column"}
OSTEOPOROTIC_FRACTURE = {"system": ICD10CM, "code": "M80.08XA",
                         "display": "Age-related osteoporosis with current pathological fracture, vertebra(e), "
                                    "initial encounter for fracture"}
NEOPLASTIC_FRACTURE = {"system": ICD10CM, "code": "M84.58XA",  # displayed as the guideline's work-up referral does
                       "display": "Pathological fracture in neoplastic disease, vertebrae, initial encounter"}
# The condition the CarePlan addresses, by what the latest MRI result said (None: no result yet):
# its text, its codings beside the compression fracture's, and whether it is confirmed.
_CONDITION: dict[str | None, tuple[str, list[dict[str, str]], bool]] = {
    None: ("Vertebral compression fracture, presumed osteoporotic (MRI pending)", [], False),
    "osteoporotic": ("Osteoporotic vertebral compression fracture", [OSTEOPOROTIC_FRACTURE], True),
    "indeterminate": ("Vertebral compression fracture, MRI indeterminate: pathologic fracture not ruled out", [],
                      False),
    "malignant": ("Pathologic vertebral compression fracture, malignant on MRI", [NEOPLASTIC_FRACTURE], True),
    "infection": ("Pathologic vertebral compression fracture, infection on MRI", [], True),
}
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CAREPLAN_STATUS = {"running": "active", "paused": "on-hold", "completed": "completed",
                    "withdrawn": "revoked", "exited": "revoked"}


@cache
def released() -> dict[str, PathwayDefinition]:
    """Every released guideline version by name, read once from ``seeds/``."""
    return released_definitions()


def definition_of(version: str) -> PathwayDefinition | None:
    """A released guideline version by name, or None."""
    return released().get(version)


def dump(resource: Any) -> dict[str, Any]:
    """A FHIR model as R4 JSON (aliases such as ``for``, no empty fields)."""
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)


def care_plan_id(patient_id: str) -> str:
    """A FHIR-valid id for a patient's CarePlan (patient keys may hold ``_``, FHIR ids may not)."""
    return "vcf-" + hashlib.sha256(patient_id.encode()).hexdigest()[:24]


def care_plan(*, patient_id: str, status: str, title: str, guideline_version: str, enrolled_at: str | None,
              orders: list[Order], notes: list[str], mri: str | None) -> dict[str, Any]:
    """The pathway as a validated CarePlan (FHIR JSON): one activity per order, each referencing
    its request resource, and the guideline version it instantiates (a PlanDefinition).
    ``mri``: what the latest MRI result said (None: none yet; the condition is then provisional,
    presumed osteoporotic)."""
    defn = definition_of(guideline_version)
    fracture, codings, confirmed = _CONDITION.get(mri, _CONDITION[None])
    activities = [{"reference": {"reference": f"{o.resource}/{o.id}", "display": o.title}} for o in orders]
    body: dict[str, Any] = {
        "resourceType": "CarePlan", "id": care_plan_id(patient_id),
        "status": _CAREPLAN_STATUS.get(status, "unknown"), "intent": "plan",
        "title": title, "description": f"Osteoporotic VCF care pathway, guideline {guideline_version}; status {status}",
        "subject": {"reference": f"Patient/{patient_id}"},
        # The condition the plan addresses, carried inside it (there is no Condition endpoint).
        "contained": [{"resourceType": "Condition", "id": "vcf", "subject": {"reference": f"Patient/{patient_id}"},
                       "code": {"coding": [*codings, COMPRESSION_FRACTURE], "text": fracture},
                       "verificationStatus": {"coding": [{"system": VERIFICATION,
                                                          "code": "confirmed" if confirmed else "provisional"}]}}],
        "addresses": [{"reference": "#vcf"}],
        "note": [{"text": n} for n in notes] or None,
        "instantiatesCanonical": [canonical(defn)] if defn else None,
    }
    if enrolled_at:
        body["period"] = {"start": enrolled_at}
    if activities:
        body["activity"] = activities
    return dump(CarePlan.model_validate({k: v for k, v in body.items() if v is not None}))
