"""What ``/openapi.json`` says of the FHIR bodies taken by the Task, DiagnosticReport and
Subscription routes (their readers, :mod:`api.fhir_tasks`, :mod:`api.fhir_report` and
:mod:`api.routes.subscriptions`, check every element and name the one that is wrong)."""

from __future__ import annotations

from typing import Any

from activities.subscriptions import (
    CHANNEL_HEADER,
    CRITERIA,
    ENDPOINT,
    RESERVED_HEADERS,
    SECRET_EXTENSION,
    SECRET_LENGTH,
)
from activities.task_model import TASK_STATUSES
from api.fhir_observation import PATIENT_REFERENCE
from api.fhir_report import ORDER_REFERENCE
from api.inputs import OBSERVED_TOO_EARLY

_TEXT = {"type": "object", "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 500}}}
_REFERENCE = {"type": "object", "required": ["reference"], "properties": {"reference": {"type": "string"}}}
_CONCEPT = {"type": "object", "properties": {
    "coding": {"type": "array", "items": {"type": "object", "properties": {
        "system": {"type": "string"}, "code": {"type": "string"}, "display": {"type": "string"}}}},
    "text": {"type": "string"}}}


def fhir_in_schemas() -> dict[str, Any]:
    """``TaskUpdate``, ``DiagnosticReportIn`` and ``SubscriptionIn`` as JSON Schemas."""
    return {
        "TaskUpdate": {
            "title": "TaskUpdate", "type": "object", "required": ["resourceType", "status"],
            "description": "A FHIR R4 Task as read, with a new status (and optionally businessStatus.text and "
                           "statusReason.text); id, focus, for and intent, if given, must be the task's own.",
            "properties": {"resourceType": {"const": "Task"}, "id": {"type": "string"},
                           "status": {"enum": list(TASK_STATUSES)}, "intent": {"const": "order"},
                           "focus": _REFERENCE, "for": _REFERENCE, "businessStatus": _TEXT, "statusReason": _TEXT}},
        "DiagnosticReportIn": {
            "title": "DiagnosticReportIn", "type": "object", "required": ["resourceType", "subject", "basedOn"],
            "description": "An MRI report (conclusionCode in the mri-etiology CodeSystem) or a radiograph report "
                           "(contained Observations in the radiograph-measure CodeSystem, referenced from result); "
                           "subject and basedOn are read first (an unknown patient or order is 404), then the rest "
                           "(422 naming the element).",
            "properties": {"resourceType": {"const": "DiagnosticReport"}, "id": {"type": "string"},
                           "status": {"enum": ["final", "amended", "corrected"]}, "code": _CONCEPT,
                           "subject": {"type": "object", "required": ["reference"], "properties": {
                               "reference": {"type": "string", "pattern": PATIENT_REFERENCE}}},
                           "basedOn": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                               "type": "object", "required": ["reference"], "properties": {
                                   "reference": {"type": "string", "pattern": ORDER_REFERENCE}}}},
                           "effectiveDateTime": {"type": "string", "description": OBSERVED_TOO_EARLY},
                           "conclusion": {"type": "string"},
                           "conclusionCode": {"type": "array", "items": _CONCEPT},
                           "result": {"type": "array", "items": _REFERENCE},
                           "contained": {"type": "array", "items": {"type": "object"}}}},
        "SubscriptionIn": _subscription_schema(),
    }


def _subscription_schema() -> dict[str, Any]:
    """Exactly what ``POST /v1/fhir/Subscription`` takes (its checks use the same patterns)."""
    reserved = "|".join("".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in name) for name in RESERVED_HEADERS)
    secret = {"type": "string", "minLength": SECRET_LENGTH[0], "maxLength": SECRET_LENGTH[1]}
    return {
        "title": "SubscriptionIn", "type": "object", "required": ["resourceType", "criteria", "channel", "extension"],
        "additionalProperties": False,
        "description": "A FHIR R4 rest-hook Subscription; the shared secret in the subscription-secret extension "
                       "(once). With VCF_SUBSCRIPTION_HOSTS set, an endpoint on another host is 403.",
        "properties": {
            "resourceType": {"const": "Subscription"}, "id": {"type": "string"}, "status": {"type": "string"},
            "reason": {"type": "string"}, "end": {"type": "string"}, "error": {"type": "string"},
            "contact": {"type": "array", "items": {"type": "object"}},
            "criteria": {"type": "string", "pattern": CRITERIA},
            "channel": {"type": "object", "required": ["type", "endpoint"], "additionalProperties": False,
                        "properties": {
                            "type": {"const": "rest-hook"},
                            "endpoint": {"type": "string", "maxLength": 2000, "pattern": ENDPOINT},
                            "payload": {"enum": ["application/fhir+json", "application/json"]},
                            "header": {"type": "array", "maxItems": 10, "items": {
                                "type": "string", "pattern": CHANNEL_HEADER,
                                "not": {"pattern": f"^({reserved}) *:"}}}}},
            "extension": {"type": "array", "items": {
                "type": "object",
                "if": {"required": ["url"], "properties": {"url": {"const": SECRET_EXTENSION}}},
                "then": {"required": ["valueString"], "properties": {"valueString": secret}}},
                "contains": {"required": ["url", "valueString"],
                             "properties": {"url": {"const": SECRET_EXTENSION}, "valueString": secret}},
                "minContains": 1, "maxContains": 1},
        },
    }
