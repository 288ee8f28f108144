"""FHIR R4 Observation in: the profile the API takes, and the contract event it becomes.

Taken: a final (amended, corrected) Observation of one patient carrying exactly one supported
LOINC code: 72514-3 (pain severity, ``valueInteger`` 0-10) becomes a ``pain`` event, 38267-1
(DXA T-score, ``valueQuantity.value`` -6..4) a ``dxa`` event. The elements read are id,
identifier, status, code, subject, effectiveDateTime and the value; category and note may come
along. Any other element, and null anywhere, is refused naming the field, so that the OpenAPI
schema (:func:`observation_schemas`: PainObservation | DxaObservation) is exactly what is taken.

The body must also be a valid ``fhir.resources`` R4B Observation; the profile's text, code, uri,
id and dateTime rules are narrower than FHIR's, so that check never refuses a profile body.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal

from fhir.resources.R4B.observation import Observation
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.errors import ApiError, field_errors
from api.inputs import OBSERVED_TOO_EARLY, date_time_pattern, valid_event
from pathway.contract import UNKNOWN_FIELD, Event, Nrs, safe_location, safe_message

LOINC = "http://loinc.org"
PAIN_LOINC = "72514-3"
DXA_LOINC = "38267-1"
SUPPORTED_OBSERVATIONS = (f"LOINC {PAIN_LOINC} (pain severity 0-10, valueInteger)",
                          f"LOINC {DXA_LOINC} (DXA lumbar spine T-score, valueQuantity)")
# Only results that are final (or corrections of one) may drive clinical decisions.
AcceptedStatus = Literal["final", "amended", "corrected"]
ACCEPTED_OBSERVATION_STATUS: tuple[str, ...] = AcceptedStatus.__args__  # type: ignore[attr-defined]
PATIENT_REFERENCE = r"^Patient/([A-Za-z0-9._-]{1,64})$"

# Contract field -> the Observation field it came from, for error messages the sender can act on.
OBSERVATION_FIELDS = {"nrs": "valueInteger", "t_score": "valueQuantity.value", "observed_at": "effectiveDateTime",
                      "event_id": "id"}

# --- The profile: FHIR primitives, spelled with explicit character classes so that every regex
# engine (the API's, a client's JSON Schema validator) reads them the same way.
_TOKEN = "[!-~]+"  # printable ASCII, no space
# FHIR string: not empty, and not only the whitespace FHIR forbids as content.
_TEXT = r"[^\u000b\u000c\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
Text = Annotated[str, Field(min_length=1, pattern=_TEXT)]
Uri = Annotated[str, Field(pattern=f"^{_TOKEN}$")]
FhirCode = Annotated[str, Field(pattern=f"^{_TOKEN}( {_TOKEN})*$")]
FhirId = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,64}$")]
# FHIR dateTime with a time: its years (no 0000) and zone offsets (up to 14:00), seconds below 60.
FhirDateTime = Annotated[str, Field(pattern=date_time_pattern(fhir=True), json_schema_extra={"format": "date-time"})]


class _Element(BaseModel):
    # An absent element is None; an explicit null is refused (FHIR JSON has no nulls), since
    # the types below do not admit None: only the default does.
    model_config = ConfigDict(extra="forbid", strict=True)


class ObservationCoding(_Element):
    """A code in a code system."""

    system: Uri = Field(None)
    code: FhirCode = Field(None)
    display: Text = Field(None)


class ObservationConcept(_Element):
    """A concept: its codings and text."""

    coding: list[ObservationCoding] = Field(None)
    text: Text = Field(None)


class ObservationIdentifier(_Element):
    """A business identifier; the first one with a value is the event id when ``id`` is absent."""

    system: Uri = Field(None)
    value: Annotated[str, Field(min_length=1, max_length=128, pattern=_TEXT)] = Field(None)


class PatientReference(_Element):
    """``Patient/{id}`` of an enrolled patient."""

    reference: Annotated[str, Field(pattern=PATIENT_REFERENCE)]
    display: Text = Field(None)


UCUM = "http://unitsofmeasure.org"


class TScoreQuantity(_Element):
    """A DXA T-score: the value alone (no ``comparator``: "< -2.5" is not a score), in the T-score's
    unit if one is given (UCUM ``{T-score}``)."""

    value: Annotated[float, Field(ge=-6, le=4)]
    unit: Literal["{T-score}", "T-score"] = Field(None)
    system: Literal["http://unitsofmeasure.org"] = Field(None)
    code: Literal["{T-score}"] = Field(None)


class ObservationNote(_Element):
    """A comment."""

    text: Text


class ObservationIn(_Element):
    """A FHIR R4 Observation: a pain score (LOINC 72514-3, valueInteger) or a DXA T-score
    (LOINC 38267-1, valueQuantity), with only the elements listed."""

    resourceType: Literal["Observation"]
    id: FhirId = Field(None)
    identifier: list[ObservationIdentifier] = Field(None)
    status: AcceptedStatus
    category: list[ObservationConcept] = Field(None)
    code: ObservationConcept
    subject: PatientReference
    effectiveDateTime: FhirDateTime = Field(None, description="When it was observed (default: when received). More "
                                            "than five minutes ahead is refused (422). " + OBSERVED_TOO_EARLY)
    valueInteger: Nrs = Field(None)
    valueQuantity: TScoreQuantity = Field(None)
    note: list[ObservationNote] = Field(None)


def named_patient(raw: Any) -> str | None:
    """The patient a FHIR resource's ``subject.reference`` names, read before anything else is
    judged (so that a refused resource is audited too); None if it names none."""
    subject = raw.get("subject") if isinstance(raw, dict) else None
    reference = subject.get("reference") if isinstance(subject, dict) else None
    match = re.fullmatch(PATIENT_REFERENCE, reference) if isinstance(reference, str) else None
    return match.group(1) if match else None


# --- In: Observation -> contract event --------------------------------------------------------

def observation_event(raw: Any) -> tuple[str, Event, str]:
    """Validate an R4 Observation; return (patient id, contract event, the field its event id
    came from); 422 naming the sender's fields otherwise.

    The event is built from the values as sent, not as the FHIR model coerced them, so the
    contract's strict checks apply: ``"valueInteger": true`` or ``"9"`` is refused, not read as 1 or 9.
    """
    if not isinstance(raw, dict):
        raise ApiError(422, "invalid Observation", ["body: expected a FHIR Observation JSON object"])
    if raw.get("resourceType") != "Observation":
        raise ApiError(422, "invalid Observation", ["resourceType: expected 'Observation'"])
    obs = _fhir_observation(raw)
    codes = {c.code for c in (obs.code.coding or []) if c.system == LOINC and c.code} if obs.code else set()
    supported = codes & {PAIN_LOINC, DXA_LOINC}
    if len(supported) != 1:
        raise ApiError(422, "unsupported Observation code", [
            "code: " + ("give one supported code, not both" if supported else "unsupported; supported codes are ")
            + ("" if supported else "; ".join(SUPPORTED_OBSERVATIONS))])
    if obs.status not in ACCEPTED_OBSERVATION_STATUS:
        raise ApiError(422, "invalid Observation",
                       [f"status: only {', '.join(ACCEPTED_OBSERVATION_STATUS)} results are applied"])
    reference = obs.subject.reference if obs.subject else None
    match = re.fullmatch(PATIENT_REFERENCE, reference) if isinstance(reference, str) else None
    if not match:
        raise ApiError(422, "invalid Observation",
                       ["subject.reference: expected 'Patient/{id}' of an enrolled patient"])
    body = _pain(raw) if supported == {PAIN_LOINC} else _dxa(raw)
    names = dict(OBSERVATION_FIELDS)
    event_id, names["event_id"] = _event_id(raw)
    if event_id is not None:
        body["event_id"] = event_id
    if "effectiveDateTime" in raw:
        body["observed_at"] = raw["effectiveDateTime"]
    event = valid_event(body, names)
    _check_profile(raw)  # last: the contract's messages, in the sender's names, come first
    return match.group(1), event, names["event_id"]


def _fhir_observation(raw: dict[str, Any]) -> Observation:
    try:
        return Observation.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid Observation", field_errors(exc.errors())) from None
    except Exception as exc:  # noqa: BLE001 - the models raise KeyError etc. on odd input (e.g. contained)
        raise ApiError(422, "invalid Observation", [f"body: invalid FHIR resource ({type(exc).__name__})"]) from None


def _check_profile(raw: dict[str, Any]) -> None:
    """422 naming each element outside the profile (unknown, null, loosely typed, too long)."""
    try:
        ObservationIn.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc, safe = safe_location(err["loc"])
            path = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".") or "body"
            reason = UNKNOWN_FIELD if not safe else "unknown element" if err["type"] == "extra_forbidden" \
                else safe_message(err)
            lines.append(f"{path}: {reason}")
        raise ApiError(422, "invalid Observation", list(dict.fromkeys(lines))) from None


def _no_value(raw: dict[str, Any], line: str) -> ApiError:
    """422 for a result without its value (and, if it says why, naming ``dataAbsentReason`` too)."""
    absent = ["dataAbsentReason: unknown element (a result without its value is not applied)"] \
        if "dataAbsentReason" in raw else []
    return ApiError(422, "invalid Observation", [line, *absent])


def _pain(raw: dict[str, Any]) -> dict[str, Any]:
    if raw.get("valueInteger") is None:
        raise _no_value(raw, f"valueInteger: required for LOINC {PAIN_LOINC} (0-10)")
    return {"type": "pain", "nrs": raw["valueInteger"]}


def _dxa(raw: dict[str, Any]) -> dict[str, Any]:
    quantity = raw.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if value is None:
        raise _no_value(raw, f"valueQuantity.value: required for LOINC {DXA_LOINC} (T-score)")
    return {"type": "dxa", "t_score": value}


def _event_id(raw: dict[str, Any]) -> tuple[Any, str]:
    """The event id as sent and the field it came from: ``id``, else the first identifier value."""
    if raw.get("id") is not None:
        return raw["id"], "id"
    for i, identifier in enumerate(raw.get("identifier") or []):
        if isinstance(identifier, dict) and identifier.get("value") is not None:
            return identifier["value"], f"identifier[{i}].value"
    return None, "id"


# --- The OpenAPI description ------------------------------------------------------------------

def _coding_of(code: str) -> dict[str, Any]:
    return {"type": "object", "required": ["system", "code"],
            "properties": {"system": {"const": LOINC}, "code": {"const": code}}}


def observation_schemas(ref: str = "#/components/schemas/{model}") -> dict[str, Any]:
    """``Observation``: ``PainObservation`` or ``DxaObservation`` (and the elements they use) as
    JSON Schemas: the profile with, for each code, its value required and the other code excluded."""
    schema = ObservationIn.model_json_schema(ref_template=ref)
    defs = schema.pop("$defs")
    out = {name: _without_null_defaults(d) for name, d in defs.items()}
    for name, own, other, keep, drop in (("PainObservation", PAIN_LOINC, DXA_LOINC, "valueInteger", "valueQuantity"),
                                         ("DxaObservation", DXA_LOINC, PAIN_LOINC, "valueQuantity", "valueInteger")):
        variant = _without_null_defaults(copy.deepcopy(schema))
        variant["title"] = name
        del variant["properties"][drop]
        variant["required"] = [*variant["required"], keep]
        variant["properties"]["code"] = {"allOf": [variant["properties"]["code"], {
            "required": ["coding"],
            "properties": {"coding": {"contains": _coding_of(own), "not": {"contains": _coding_of(other)}}}}]}
        out[name] = variant
    out["Observation"] = {"title": "Observation", "description": ObservationIn.__doc__,
                          "oneOf": [{"$ref": ref.format(model=n)} for n in ("PainObservation", "DxaObservation")]}
    return out


def _without_null_defaults(schema: Any) -> Any:
    """The schema without ``"default": null``: an absent element is absent, never null."""
    if isinstance(schema, dict):
        return {k: _without_null_defaults(v) for k, v in schema.items() if not (k == "default" and v is None)}
    if isinstance(schema, list):
        return [_without_null_defaults(v) for v in schema]
    return schema
