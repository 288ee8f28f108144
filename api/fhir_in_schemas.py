"""What ``/openapi.json`` says of the FHIR bodies taken by the Task, DiagnosticReport and
Subscription routes (their readers, :mod:`api.fhir_tasks`, :mod:`api.fhir_report` and
:mod:`api.routes.subscriptions`, check every element and name the one that is wrong)."""

from __future__ import annotations

from typing import Any

from activities.task_model import TASK_STATUSES

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
            "title": "DiagnosticReportIn", "type": "object",
            "required": ["resourceType", "status", "code", "subject", "basedOn"],
            "description": "An MRI report (conclusionCode in the mri-etiology CodeSystem) or a radiograph report "
                           "(contained Observations in the radiograph-measure CodeSystem, referenced from result).",
            "properties": {"resourceType": {"const": "DiagnosticReport"}, "id": {"type": "string"},
                           "status": {"enum": ["final", "amended", "corrected"]}, "code": _CONCEPT,
                           "subject": _REFERENCE, "basedOn": {"type": "array", "items": _REFERENCE},
                           "effectiveDateTime": {"type": "string"}, "conclusion": {"type": "string"},
                           "conclusionCode": {"type": "array", "items": _CONCEPT},
                           "result": {"type": "array", "items": _REFERENCE},
                           "contained": {"type": "array", "items": {"type": "object"}}}},
        "SubscriptionIn": {
            "title": "SubscriptionIn", "type": "object", "required": ["resourceType", "criteria", "channel"],
            "description": "A FHIR R4 rest-hook Subscription; the shared secret in the subscription-secret extension.",
            "properties": {"resourceType": {"const": "Subscription"}, "status": {"type": "string"},
                           "reason": {"type": "string"}, "criteria": {"type": "string"},
                           "channel": {"type": "object", "required": ["type", "endpoint"], "properties": {
                               "type": {"const": "rest-hook"}, "endpoint": {"type": "string"},
                               "payload": {"type": "string"},
                               "header": {"type": "array", "items": {"type": "string"}}}},
                           "extension": {"type": "array", "items": {"type": "object"}}}},
    }
