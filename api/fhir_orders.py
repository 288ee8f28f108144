"""Order-book rows as FHIR R4 request resources (``fhir.resources.R4B``), and a searchset Bundle.

Each row becomes a ServiceRequest, MedicationRequest, CommunicationRequest or Task carrying the
seed's codes (CPT, RxNorm, ICD-10-CM). A CodeableConcept holds one concept: an order for two
drugs names them as ingredients of a contained Medication, the augmentation referral carries the
CPT of the suggested procedure alone, and the pathologic work-up gives its ICD-10-CM code as the
reason, not as what is requested. The one exception is the adjacent-fracture screening: thoracic
and lumbar films taken together as one order (one task per need), so its concept is coded by
both CPT codes. A code the seed marks unconfirmed (``None``) is
text only, never a coding. Resources live at ``{base}v1/fhir/{type}/{id}``.
"""

from __future__ import annotations

import re
from typing import Any, cast
from urllib.parse import urlencode

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communicationrequest import CommunicationRequest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from activities.order_model import Order, OrderStatus, RequestResource
from api.fhir import COMPRESSION_FRACTURE, definition_of, dump
from pathway.builder import readable_days
from pathway.contract import ACTION_KINDS, ActionKind
from pathway.guideline import Code
from pathway.plan_definition import REVIEW_REASON_SYSTEM, activity_canonical

ORDER_STATUS_TAG = "urn:vcf-pathway:order-status"
ORDER_IDENTIFIER = "urn:vcf-pathway:order-id"
OVERDUE_KIND = "escalate_overdue_result"
REFUSAL_KIND = "alert_task_refused"  # activities.orders.REFUSAL_KIND: a care-team task about a refused order
AFTER_END_KIND = "escalate_result_after_end"  # activities.results_after_end: a result after the end needs eyes
MODELS: dict[RequestResource, Any] = {"ServiceRequest": ServiceRequest, "MedicationRequest": MedicationRequest,
          "CommunicationRequest": CommunicationRequest, "Task": Task}
_STATUS: dict[RequestResource, dict[OrderStatus, str]] = {  # order-book status -> the resource's own vocabulary
    "ServiceRequest": {"active": "active", "completed": "completed", "acknowledged": "completed",
                       "cancelled": "revoked", "stopped": "revoked"},
    "CommunicationRequest": {"active": "active", "completed": "completed", "acknowledged": "completed",
                             "cancelled": "revoked", "stopped": "revoked"},
    "MedicationRequest": {"active": "active", "completed": "completed", "acknowledged": "completed",
                          "cancelled": "cancelled", "stopped": "stopped"},
    "Task": {"active": "requested", "completed": "completed", "acknowledged": "completed",
             "cancelled": "cancelled", "stopped": "cancelled"},
}
PRIORITIES = ("routine", "urgent", "asap", "stat")


def _status(order: Order) -> str:
    """The resource's status: the order follows its Task, so one acknowledged before its result (its Task
    ``accepted``) is still ``active`` (in progress), and a result completes it."""
    if order.acknowledged_before_result and order.resource != "Task":
        return _STATUS[order.resource]["active"]
    return _STATUS[order.resource][order.status]


def fhir_statuses(resource: RequestResource) -> tuple[str, ...]:
    """The statuses a resource of this type can carry here."""
    return tuple(dict.fromkeys(_STATUS[resource].values()))


# refer_vertebral_augmentation: details.suggested_procedure -> its CPT codes (thoracic, lumbar); the
# order carries its region's pair and names the suggested one alone.
PROCEDURE_CPT = {"balloon_kyphoplasty": ("22513", "22514"), "vertebroplasty": ("22510", "22511")}
REVIEW_REASONS = {"review_evidence_missing": "12-week review held: evidence missing",
                  "indeterminate_mri": "Indeterminate MRI", "withdrawal_handover": "Withdrawal hand-over",
                  "pathologic_exit_medications": "Medication review after a pathologic exit",
                  "opioid_review": "Opioid course review", "side_effect": "Side effect reported"}
VERSION_IN_CITATION = re.compile(r"\[guideline ([^\]]+)\]$")
PATHOLOGIC_ICD10 = "M84.58XA"  # neoplastic disease only
_ETIOLOGY_TEXT = {"malignant": "Pathologic vertebral fracture, malignant on MRI",
                  "infection": "Pathologic vertebral fracture, infection on MRI"}
# What every order but the pathologic work-up is for: a compression fracture, whose osteoporotic
# cause an MRI confirms (the patient's CarePlan says when).
VCF_REASON = {"coding": [COMPRESSION_FRACTURE], "text": "Vertebral compression fracture"}


def _coding(code: Code) -> dict[str, Any]:
    return {"system": code.system, "code": code.code, "display": code.display}


def _concept(title: str, codes: list[Code]) -> dict[str, Any]:
    """One concept: its confirmed codes as codings, unconfirmed ones named in the text."""
    confirmed = [_coding(c) for c in codes if c.code]
    unconfirmed = [c.display for c in codes if not c.code]
    text = title + (f" ({'; '.join(unconfirmed)})" if unconfirmed else "")
    return {"coding": confirmed, "text": text} if confirmed else {"text": text}


def _requested(order: Order) -> dict[str, Any]:
    """What a ServiceRequest or Task asks for."""
    if order.kind == "refer_vertebral_augmentation":
        wanted = PROCEDURE_CPT.get(str(order.details.get("suggested_procedure")), ())
        return _concept(order.title, [c for c in order.codes if c.code in wanted])
    if order.kind == "refer_pathologic_fracture_workup":
        return {"text": order.title}
    return _concept(order.title, order.codes)


def _reasons(order: Order) -> list[dict[str, Any]]:
    if order.kind == "request_clinician_review":
        reason = str(order.details.get("reason"))
        return [{"coding": [{"system": REVIEW_REASON_SYSTEM, "code": reason,
                             "display": REVIEW_REASONS.get(reason, reason)}],
                 "text": REVIEW_REASONS.get(reason, reason)}]
    if order.kind != "refer_pathologic_fracture_workup":
        return [VCF_REASON]
    etiology = order.details.get("etiology")
    text = _ETIOLOGY_TEXT.get(etiology, "Suspected pathologic vertebral fracture")
    icd = [_coding(c) for c in order.codes if c.code == PATHOLOGIC_ICD10]
    return [{"coding": icd, "text": text}] if etiology == "malignant" and icd else [{"text": text}]


def _medication(order: Order) -> dict[str, Any]:
    """``medicationCodeableConcept`` for one drug; for several, a reference to a contained
    Medication with one ingredient per drug."""
    if len(order.codes) <= 1:
        return {"medicationCodeableConcept": _concept(order.title, order.codes)}
    ingredients = [{"itemCodeableConcept": {"coding": [_coding(c)], "text": c.display} if c.code
                    else {"text": c.display}} for c in order.codes]
    medication = {"resourceType": "Medication", "id": "med", "code": {"text": order.title},
                  "ingredient": ingredients}
    return {"contained": [medication], "medicationReference": {"reference": "#med", "display": order.title}}


def instantiates(order: Order) -> str | None:
    """The ActivityDefinition (url|version) an order came from: the guideline version its citation
    names, the level and procedure its details name (None for tasks the order book adds)."""
    found = VERSION_IN_CITATION.search(order.citation)
    defn = definition_of(found.group(1)) if found else None
    if defn is None or order.kind not in ACTION_KINDS:
        return None
    details = order.details
    return activity_canonical(defn, cast(ActionKind, order.kind), details.get("level"),
                              details.get("suggested_procedure"))


def overdue_order_id(order: Order) -> str | None:
    """The order an overdue-result, refused-order or result-after-the-end task is about (None for any other)."""
    return order.details.get("order_id") if order.kind in (OVERDUE_KIND, REFUSAL_KIND, AFTER_END_KIND) else None


def resource_body(order: Order, focus_type: str | None = None) -> dict[str, Any]:
    """One order as FHIR JSON (not yet validated). ``focus_type`` is the resource type of the
    order an overdue-result task points at, if known."""
    kind, resource = order.kind, order.resource
    subject = {"reference": f"Patient/{order.patient_id}"}
    notes = [{"text": f"Why: {order.rationale}"}, {"text": f"Basis: {order.citation}"},
             {"text": readable_days(f"Pathway day {order.day:g}; action {kind}")}]  # "day 0", not "day 6.2e-05"
    if order.status_reason:
        notes.append({"text": f"Status ({order.status}): {readable_days(order.status_reason)}"})
    body: dict[str, Any] = {
        "resourceType": resource, "id": order.id,
        "meta": {"tag": [{"system": ORDER_STATUS_TAG, "code": order.status}]},
        "identifier": [{"system": ORDER_IDENTIFIER, "value": order.id}],
        "status": _status(order),
        "priority": order.priority if order.priority in PRIORITIES else "routine",
        "authoredOn": order.created_at.isoformat(), "note": notes,
    }
    canonical = instantiates(order)
    if canonical and resource in ("ServiceRequest", "MedicationRequest"):
        body["instantiatesCanonical"] = [canonical]
    elif canonical and resource == "Task":  # one canonical in R4's Task; CommunicationRequest has none
        body["instantiatesCanonical"] = canonical
    if resource == "ServiceRequest":
        body.update(intent="order", code=_requested(order), subject=subject, reasonCode=_reasons(order))
    elif resource == "MedicationRequest":
        body.update(intent="order", subject=subject, reasonCode=_reasons(order), **_medication(order))
        if kind == "stop_calcitonin":  # a stop order forbids the drug from now on
            body["doNotPerform"] = True
    elif resource == "CommunicationRequest":
        body.update(subject=subject, payload=[{"contentString": order.title}], reasonCode=_reasons(order))
    else:  # Task: reasonCode is a single concept in R4
        body.update(intent="order", code=_requested(order), description=order.title,
                    reasonCode=_reasons(order)[0], **{"for": subject})
        target = overdue_order_id(order)
        if target:
            body["focus"] = ({"reference": f"{focus_type}/{target}"} if focus_type
                             else {"identifier": {"system": ORDER_IDENTIFIER, "value": target}})
    if resource != "ServiceRequest" and order.status_reason:
        body["statusReason"] = {"text": readable_days(order.status_reason)}
    return body


def order_resource(order: Order, focus_type: str | None = None) -> Any:
    """One order as its validated R4B request resource."""
    return MODELS[order.resource].model_validate(resource_body(order, focus_type))


def resource_json(order: Order, focus_type: str | None = None) -> dict[str, Any]:
    """One order as validated FHIR JSON."""
    return dump(order_resource(order, focus_type))


def resource_url(base_url: str, order: Order) -> str:
    """Where the order's resource is served: ``{base}v1/fhir/{type}/{id}``."""
    return f"{base_url}v1/fhir/{order.resource}/{order.id}"


def orders_bundle(page: list[Order], base_url: str, *, total: int, self_params: dict[str, Any],
                  next_params: dict[str, Any] | None, focus_types: dict[str, str]) -> dict[str, Any]:
    """A searchset Bundle (FHIR JSON) of one page of orders; each resource is validated once,
    as part of the Bundle. ``self_params`` is the search as asked, ``next_params`` the next
    page's (None on the last page)."""
    def link(relation: str, params: dict[str, Any]) -> dict[str, str]:
        return {"relation": relation, "url": f"{base_url}v1/orders?{urlencode(params)}"}

    links = [link("self", self_params)] + ([link("next", next_params)] if next_params is not None else [])
    body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if page:
        body["entry"] = [{"fullUrl": resource_url(base_url, o), "search": {"mode": "match"},
                          "resource": resource_body(o, focus_types.get(overdue_order_id(o) or ""))} for o in page]
    return dump(Bundle.model_validate(body))
