"""FHIR R4 DiagnosticReport in: an MRI or radiograph result, and the contract event it becomes.

An MRI report carries its etiology in ``conclusionCode`` (the project's ``mri-etiology``
CodeSystem: :mod:`api.fhir_codesystems`) and becomes an ``mri`` event; a radiograph report
carries contained Observations (``result`` -> ``#id``) coded in the ``radiograph-measure``
CodeSystem — height loss % (required), kyphosis degrees, a new fracture level — and becomes a
``radiograph`` event. ``basedOn`` names the order the report answers (checked by the route:
:func:`report_kind_matches`; an order of another kind is a conflict, 409, as an event's
``fulfils``). The report's ``id`` (or first identifier value) is the event id,
``effectiveDateTime`` the time observed. Then it goes through the same intake as a contract
event. Anything unknown, missing or contradictory is 422 naming the element; nothing is applied
until the whole report is read.
"""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydantic import ValidationError

from api.errors import ApiError, field_errors
from api.fhir_codesystems import CODES, HEIGHT_LOSS, KYPHOSIS, MRI_ETIOLOGY, NEW_LEVEL, RADIOGRAPH_MEASURE
from api.fhir_observation import ACCEPTED_OBSERVATION_STATUS, PATIENT_REFERENCE
from api.inputs import valid_event
from pathway.contract import Event
from pathway.results import ORDERS_ANSWERED_BY

REPORT_ELEMENTS = ("resourceType", "id", "identifier", "status", "category", "code", "subject", "basedOn",
                   "effectiveDateTime", "issued", "performer", "conclusion", "conclusionCode", "result", "contained")
OBSERVATION_ELEMENTS = ("resourceType", "id", "status", "code", "subject", "effectiveDateTime", "valueQuantity",
                        "valueString")
ORDER_REFERENCE = r"^ServiceRequest/([A-Za-z0-9-]{1,64})$"
# The order kinds a report of each event type answers (the one mapping, imaging only).
ANSWERS = {kind: tuple(ORDERS_ANSWERED_BY[kind]) for kind in ("mri", "radiograph")}
_UNITS = {HEIGHT_LOSS: ("%",), KYPHOSIS: ("deg", "°")}
_FIELDS = {"etiology": "conclusionCode", "observed_at": "effectiveDateTime", "event_id": "id"}


def _invalid(*lines: str) -> ApiError:
    return ApiError(422, "invalid DiagnosticReport", list(lines))


def report_target(raw: Any) -> tuple[str, str]:
    """The patient (``subject``) and the order (``basedOn``) a report is about, read first so that
    an unknown one answers 404 before the report itself is judged; 422 if they are malformed."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "DiagnosticReport":
        raise _invalid("resourceType: expected 'DiagnosticReport'")
    subject = raw.get("subject").get("reference") if isinstance(raw.get("subject"), dict) else None
    patient = re.fullmatch(PATIENT_REFERENCE, subject) if isinstance(subject, str) else None
    if not patient:
        raise _invalid("subject.reference: expected 'Patient/{id}' of an enrolled patient")
    return patient.group(1), _based_on(raw.get("basedOn"))


def report_event(raw: Any) -> tuple[str, Event, str, str]:
    """Validate a DiagnosticReport; return (patient id, contract event, the element its event id
    came from, the id of the order ``basedOn`` names); 422 naming the element otherwise."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "DiagnosticReport":
        raise _invalid("resourceType: expected 'DiagnosticReport'")
    _only(raw, REPORT_ELEMENTS, "")
    nulls = _nulls(raw, "")
    if nulls:
        raise _invalid(*(f"{path}: null is not allowed (FHIR JSON leaves an absent element out)" for path in nulls))
    try:
        DiagnosticReport.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid DiagnosticReport", field_errors(exc.errors())) from None
    except Exception as exc:  # noqa: BLE001 - the models raise other errors on odd input
        raise _invalid(f"body: invalid FHIR resource ({type(exc).__name__})") from None
    if raw.get("status") not in ACCEPTED_OBSERVATION_STATUS:
        raise _invalid(f"status: only {', '.join(ACCEPTED_OBSERVATION_STATUS)} reports are applied")
    subject = (raw.get("subject") or {}).get("reference")
    patient = re.fullmatch(PATIENT_REFERENCE, subject) if isinstance(subject, str) else None
    if not patient:
        raise _invalid("subject.reference: expected 'Patient/{id}' of an enrolled patient")
    order_id = _based_on(raw.get("basedOn"))
    etiology = _etiology(raw.get("conclusionCode"))
    measures = _measures(raw, patient.group(0))
    if etiology is not None and measures:
        raise _invalid("conclusionCode: an MRI etiology and radiograph measures in one report contradict each other")
    if etiology is not None:
        body: dict[str, Any] = {"type": "mri", "etiology": etiology}
    elif measures:
        if HEIGHT_LOSS not in measures:
            raise _invalid(f"result: a radiograph report needs an Observation coded {HEIGHT_LOSS} "
                           f"({RADIOGRAPH_MEASURE})")
        body = {"type": "radiograph", "height_loss_pct": measures[HEIGHT_LOSS],
                **({"kyphosis_deg": measures[KYPHOSIS]} if KYPHOSIS in measures else {}),
                **({"new_fracture_level": measures[NEW_LEVEL]} if NEW_LEVEL in measures else {})}
    else:
        raise _invalid(f"conclusionCode: an MRI report needs an etiology ({MRI_ETIOLOGY}); a radiograph "
                       f"report needs result Observations ({RADIOGRAPH_MEASURE})")
    names = dict(_FIELDS)
    if raw.get("id") is not None:
        body["event_id"] = raw["id"]
    elif raw.get("identifier") and isinstance(raw["identifier"][0], dict) and raw["identifier"][0].get("value"):
        body["event_id"], names["event_id"] = raw["identifier"][0]["value"], "identifier[0].value"
    if "effectiveDateTime" in raw:
        body["observed_at"] = raw["effectiveDateTime"]
    names.update({"height_loss_pct": f"{HEIGHT_LOSS} value", "kyphosis_deg": f"{KYPHOSIS} value",
                  "new_fracture_level": f"{NEW_LEVEL} value"})
    return patient.group(1), valid_event(body, names), names["event_id"], order_id


def report_kind_matches(event_type: str, order_kind: str) -> str | None:
    """Why the order ``basedOn`` names cannot be what this report answers (None if it can)."""
    if order_kind in ANSWERS[event_type]:
        return None
    answers = " or ".join(ANSWERS[event_type])
    return f"basedOn[0].reference: names a {order_kind} order; a {event_type} report answers {answers}"


def _nulls(value: Any, path: str) -> list[str]:
    """The paths of the explicit nulls in a resource (the first ten), as the Observation route refuses them."""
    found: list[str] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip(".")
        if not isinstance(key, int) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
            name = f"{path}.an element".lstrip(".")  # never echo a name that is not a plain one
        found += [name] if item is None else _nulls(item, name)
    return found[:10]


def _only(raw: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        name = unknown[0] if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", unknown[0]) else "an unknown field"
        raise _invalid(f"{prefix}{name}: unknown element (read: {', '.join(allowed)})")


def _based_on(based_on: Any) -> str:
    if not isinstance(based_on, list) or len(based_on) != 1 or not isinstance(based_on[0], dict):
        raise _invalid("basedOn: name exactly one order, as ServiceRequest/{order id}")
    found = re.fullmatch(ORDER_REFERENCE, str(based_on[0].get("reference", "")))
    if not found:
        raise _invalid("basedOn[0].reference: expected ServiceRequest/{order id}")
    return found.group(1)


def _etiology(concepts: Any) -> str | None:
    if not concepts:
        return None
    found = {c.get("code") for concept in concepts for c in concept.get("coding") or []
             if c.get("system") == MRI_ETIOLOGY}
    if not found:
        raise _invalid(f"conclusionCode: no code from {MRI_ETIOLOGY}")
    if len(found) > 1:
        raise _invalid("conclusionCode: more than one etiology (they contradict each other)")
    etiology = found.pop()
    if etiology not in CODES[MRI_ETIOLOGY]:
        raise _invalid(f"conclusionCode: unknown code; expected one of {', '.join(sorted(CODES[MRI_ETIOLOGY]))}")
    return etiology


def _measures(raw: dict[str, Any], subject: str) -> dict[str, Any]:
    """The radiograph measures from the contained Observations that ``result`` references."""
    contained = {c.get("id"): (i, c) for i, c in enumerate(raw.get("contained") or []) if isinstance(c, dict)}
    measures: dict[str, Any] = {}
    for i, ref in enumerate(raw.get("result") or []):
        target = str((ref or {}).get("reference", ""))
        if not target.startswith("#") or target[1:] not in contained:
            raise _invalid(f"result[{i}].reference: expected #id of a contained Observation")
        j, obs = contained.pop(target[1:])
        where = f"contained[{j}]."
        if obs.get("resourceType") != "Observation":
            raise _invalid(f"{where}resourceType: expected 'Observation'")
        _only(obs, OBSERVATION_ELEMENTS, where)
        if obs.get("status") not in ACCEPTED_OBSERVATION_STATUS:
            raise _invalid(f"{where}status: only {', '.join(ACCEPTED_OBSERVATION_STATUS)} results are applied")
        if "subject" in obs and (obs["subject"] or {}).get("reference") != subject:
            raise _invalid(f"{where}subject.reference: not the report's subject")
        codes = {c.get("code") for c in (obs.get("code") or {}).get("coding") or [] if c.get("system") ==
                 RADIOGRAPH_MEASURE}
        if len(codes) != 1 or not codes <= CODES[RADIOGRAPH_MEASURE]:
            raise _invalid(f"{where}code: expected one code of {RADIOGRAPH_MEASURE}: "
                           f"{', '.join(sorted(CODES[RADIOGRAPH_MEASURE]))}")
        code = codes.pop()
        if code in measures:
            raise _invalid(f"{where}code: {code} given twice")
        measures[code] = _value(obs, code, where)
    if contained:
        raise _invalid(f"contained[{min(i for i, _ in contained.values())}]: not referenced from result")
    return measures


def _value(obs: dict[str, Any], code: str, where: str) -> Any:
    if code == NEW_LEVEL:
        if not isinstance(obs.get("valueString"), str) or "valueQuantity" in obs:
            raise _invalid(f"{where}valueString: expected the new fracture level (T1-L5)")
        return obs["valueString"]
    quantity = obs.get("valueQuantity")
    if not isinstance(quantity, dict) or "valueString" in obs:
        raise _invalid(f"{where}valueQuantity: expected a quantity for {code}")
    for element in ("unit", "code"):
        if element in quantity and quantity[element] not in _UNITS[code]:
            raise _invalid(f"{where}valueQuantity.{element}: expected {_UNITS[code][0]} for {code}")
    if "comparator" in quantity:
        raise _invalid(f"{where}valueQuantity.comparator: a measure is a value, not a bound")
    return quantity.get("value")
