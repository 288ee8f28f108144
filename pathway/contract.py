"""The pathway contract: enrollment, events in, actions out, scenario files.

One set of pydantic models shared by the workflow, the HTTP API, the CLI and the tests, so that
every caller speaks the vocabulary of ``docs/contract.md``. Field names are fixed by that
contract; unknown fields are refused so that a typo never passes silently.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

FRACTURE_LEVELS: tuple[str, ...] = tuple(f"T{i}" for i in range(1, 13)) + tuple(
    f"L{i}" for i in range(1, 6)
)
FractureLevel = Literal[
    "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
    "L1", "L2", "L3", "L4", "L5",
]  # fmt: skip
RedFlag = Literal["history_of_cancer", "fever_or_infection", "neuro_deficit", "unexplained_weight_loss"]

# 1-64 of [A-Za-z0-9._-], but never "." or "..": a URL normaliser would turn those into another path.
# Ids are case-sensitive; the API refuses an id that differs from an enrolled one only by case.
PATIENT_ID_PATTERN = r"^([A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)$"
PatientId = Annotated[str, Field(min_length=1, max_length=64, pattern=PATIENT_ID_PATTERN)]
PATIENT_ID_EXPECTED = "expected 1-64 of A-Z a-z 0-9 . _ - (and not '.' or '..')"


def is_patient_id(value: str) -> bool:
    """Whether ``value`` is a patient key as enrollment accepts it (:data:`PatientId`)."""
    return 0 < len(value) <= 64 and re.fullmatch(PATIENT_ID_PATTERN, value) is not None
Nrs = Annotated[int, Field(ge=0, le=10, strict=True)]
# Numbers are strict: "25" or true is refused, never quietly read as 25 or 1.
Percent = Annotated[float, Field(ge=0, le=100, strict=True)]
Text = Annotated[str, Field(min_length=1, max_length=500)]

ActionKind = Literal[
    "prescribe_first_line_analgesia",
    "prescribe_opioid_short_course",
    "start_calcitonin",
    "stop_calcitonin",
    "advise_early_mobilization",
    "offer_brace",
    "prescribe_calcium_vitamin_d",
    "prescribe_bisphosphonate",
    "order_dxa",
    "order_mri",
    "order_radiograph",
    "offer_nerve_block",
    "refer_physical_therapy",
    "alert_prolonged_immobilization",
    "flag_progressive_deformity",
    "flag_new_vertebral_fracture",
    "refer_vertebral_augmentation",
    "refer_pathologic_fracture_workup",
    "refer_urgent_spine_surgery",
    "order_adjacent_fracture_screening",
    "outreach_missed_follow_up",
    "escalate_lost_to_follow_up",
    "request_clinician_review",
]
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)

ReviewReason = Literal[
    "review_evidence_missing", "indeterminate_mri", "withdrawal_handover", "pathologic_exit_medications",
    "opioid_review", "side_effect",
]  # fmt: skip

PathwayStatus = Literal["running", "completed", "exited", "withdrawn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Enrollment(_Strict):
    """A patient entering the pathway at day 0 (pseudonymous id, no PHI)."""

    id: PatientId
    fracture_level: FractureLevel
    height_loss_pct: Percent
    pain_nrs: Nrs
    onset_days_before_enrollment: Annotated[int, Field(ge=0, le=36_500, strict=True)] = 0
    red_flags: list[RedFlag] = Field(default_factory=list, max_length=4)

    @field_validator("red_flags")
    @classmethod
    def _no_repeats(cls, flags: list[str]) -> list[str]:
        if len(set(flags)) != len(flags):
            raise ValueError("a red flag is listed twice")
        return flags


_ISO_WITH_ZONE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})")


def _iso_instant(value: Any) -> Any:
    """An instant only as an ISO 8601 string with a time and a zone: never a number read as Unix time."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("observed_at needs a time zone (e.g. 2026-01-31T09:00:00Z)")
        return value
    if not isinstance(value, str) or not _ISO_WITH_ZONE.fullmatch(value):
        raise ValueError("expected an ISO 8601 date and time with a time zone (e.g. 2026-01-31T09:00:00Z)")
    return value


def _in_utc_range(value: datetime) -> datetime:
    """An instant that UTC can name (year 1 at +14:00 cannot: it falls before year 1 in UTC)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range: the instant falls outside years 1-9999 in UTC") from None
    return value


Instant = Annotated[datetime, BeforeValidator(_iso_instant), AfterValidator(_in_utc_range)]


class _Event(_Strict):
    event_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    observed_at: Instant | None = None


class PainEvent(_Event):
    """A pain score on the 0–10 numeric rating scale (LOINC 72514-3)."""

    type: Literal["pain"] = "pain"
    nrs: Nrs


# The id of an action of the pathway, as its actions list them (``order_radiograph:day-42``).
ActionRef = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-z_]+(:[A-Za-z0-9.+_-]+)*$")]


class _Result(_Event):
    fulfils: ActionRef | None = None


class MriEvent(_Result):
    """An MRI result: is the fracture osteoporotic or pathologic?"""

    type: Literal["mri"] = "mri"
    etiology: Literal["osteoporotic", "malignant", "infection", "indeterminate"]


class RadiographEvent(_Result):
    """A follow-up radiograph: vertebral height loss, kyphosis, a new fracture level."""

    type: Literal["radiograph"] = "radiograph"
    height_loss_pct: Percent
    kyphosis_deg: Annotated[float, Field(ge=0, le=90, strict=True)] | None = None
    new_fracture_level: FractureLevel | None = None


class DxaEvent(_Result):
    """A bone density result (T-score, LOINC 38267-1)."""

    type: Literal["dxa"] = "dxa"
    t_score: Annotated[float, Field(ge=-6, le=4, strict=True)]


class MobilityEvent(_Event):
    """Whether the patient is bed-bound."""

    type: Literal["mobility"] = "mobility"
    bed_bound: Annotated[bool, Field(strict=True)]


class PulmonaryEvent(_Event):
    """Pulmonary dysfunction (e.g. COPD likely to worsen with kyphosis)."""

    type: Literal["pulmonary"] = "pulmonary"
    dysfunction: Annotated[bool, Field(strict=True)]


class NeuroEvent(_Event):
    """A neurological deficit: weakness, sensory loss, bowel/bladder dysfunction."""

    type: Literal["neuro"] = "neuro"
    deficit: Annotated[bool, Field(strict=True)]


class SideEffectEvent(_Event):
    """A drug side effect, recorded for the care team."""

    type: Literal["side_effect"] = "side_effect"
    drug: Text
    effect: Text


ClinicianDecision = Literal["pause", "resume", "withdraw", "confirm_nerve_block", "decline_augmentation"]


class ClinicianEvent(_Event):
    """A clinician's decision on the pathway, with its author and reason."""

    type: Literal["clinician"] = "clinician"
    decision: ClinicianDecision
    reason: Text
    author: Text


Event = Annotated[
    PainEvent | MriEvent | RadiographEvent | DxaEvent | MobilityEvent | PulmonaryEvent | NeuroEvent
    | SideEffectEvent | ClinicianEvent,
    Field(discriminator="type"),
]  # fmt: skip
EVENT_TYPES: tuple[str, ...] = (
    "pain", "mri", "radiograph", "dxa", "mobility", "pulmonary", "neuro", "side_effect", "clinician",
)  # fmt: skip
_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def text_fields(event_type: str) -> frozenset[str]:
    """The free-text fields of an event type (``drug``, ``reason``, ...; none for an unknown type)."""
    for model in get_args(get_args(Event)[0]):
        if model.model_fields["type"].default == event_type:
            return frozenset(name for name, spec in model.model_fields.items() if spec.annotation is str)
    return frozenset()


class Action(BaseModel):
    """One thing the pathway did, with the facts, threshold and guideline line behind it."""

    model_config = ConfigDict(extra="forbid")

    day: float
    kind: ActionKind
    rationale: str
    citation: str
    details: dict[str, Any] = Field(default_factory=dict)
    id: str = Field("", description="Stable per cause: the idempotency key within a pathway.")


class ScenarioEvent(BaseModel):
    """An event in a scenario file: ``day`` sets the time, so ``observed_at`` is not allowed."""

    model_config = ConfigDict(extra="allow")
    day: Annotated[float, Field(ge=0, strict=True)]


class Scenario(_Strict):
    """A scenario file: a patient, events by day, and where the clock stops."""

    name: Text
    patient: Enrollment
    events: list[dict[str, Any]] = Field(default_factory=list)
    until_day: Annotated[float, Field(ge=0, le=730, strict=True)]

    def timed_events(self) -> list[tuple[float, Event]]:
        """The events with their day, validated (see :func:`parse_scenario`)."""
        return [(float(raw["day"]), parse_event({k: v for k, v in raw.items() if k != "day"})) for raw in self.events]


class ContractError(ValueError):
    """Input that breaks the contract; ``errors`` name each field and reason."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


# A field name an error may repeat back: what the contract, FHIR and JSON APIs use, and the typos a
# sender makes of them (`fracture-level`, `observed.at`). Any other key the sender wrote (spaces,
# markup, a name, a whole sentence) is never echoed: "an unknown field".
SAFE_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
UNKNOWN_FIELD = "an unknown field"


def safe_location(loc: Any) -> tuple[list[str], bool]:
    """The parts of an error location that may be shown (list indices and safe names), up to the
    first that may not; and whether all of them may."""
    shown: list[str] = []
    for part in loc:
        if isinstance(part, int) or SAFE_FIELD_NAME.fullmatch(str(part)):
            shown.append(str(part))
        else:
            return shown, False
    return shown, True


def safe_message(err: Any) -> str:
    """A pydantic error's message, unless it quotes the submitted text (then a fixed one)."""
    message, given = str(err["msg"]), err.get("input")
    expected = err.get("ctx", {}).get("expected") if err.get("type") in ("literal_error", "enum") else None
    if expected:  # the allowed values, never the submitted one (which may be among their letters)
        return f"Input should be {expected}"
    if isinstance(given, str) and len(given) >= 3 and given in message:
        return "invalid value"
    return message


def describe(exc: ValidationError, prefix: str = "", whole: str = "body") -> list[str]:
    """Turn a pydantic error into ``field: reason`` lines a caller can act on. Nothing the caller
    sent is quoted: a key that is not a plain name is "an unknown field", and a message that would
    repeat a value is replaced. ``whole``: what an error of the whole input is named."""
    lines = []
    for err in exc.errors():
        raw_loc = list(err["loc"])
        # The discriminated union puts the event type in the path; the caller never wrote it.
        if len(raw_loc) > 1 and raw_loc[0] in EVENT_TYPES:
            raw_loc = raw_loc[1:]
        loc, safe = safe_location(raw_loc)
        field = prefix + ".".join(loc) if loc else (prefix.rstrip(".") or whole)
        message = safe_message(err)
        if not safe:
            message = UNKNOWN_FIELD
        elif err["type"] == "value_error":
            message = str(err.get("ctx", {}).get("error", message))
        elif err["type"] == "string_pattern_mismatch" and loc[-1:] == ["id"]:
            message = PATIENT_ID_EXPECTED
        elif err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "union_tag_invalid":
            field = prefix + "type"
            message = f"unknown event type; expected one of {', '.join(EVENT_TYPES)}"
        elif err["type"] == "union_tag_not_found":
            field = prefix + "type"
            message = f"missing; expected one of {', '.join(EVENT_TYPES)}"
        lines.append(f"{field}: {message}")
    lines = list(dict.fromkeys(lines))
    if len(lines) > MAX_ERRORS:  # a body of thousands of unknown keys is told so in a few lines, not thousands
        lines = [*lines[:MAX_ERRORS], f"body: and {len(lines) - MAX_ERRORS} more errors"]
    return lines


MAX_ERRORS = 10  # error lines in one answer or refusal


def parse_event(raw: Any) -> Event:
    """Validate one event; raise :class:`ContractError` naming the field and the reason."""
    try:
        return _event_adapter.validate_python(raw)
    except ValidationError as exc:
        raise ContractError(describe(exc)) from None


def parse_enrollment(raw: Any) -> Enrollment:
    """Validate an enrollment body; raise :class:`ContractError` naming the field."""
    try:
        return Enrollment.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(describe(exc)) from None


# Text sent in (a body, a scenario file) may hold tab, line feed and carriage return and no other control
# character, as FHIR's string type: PostgreSQL cannot store a NUL. Checked where input enters, not by the
# models, which the workflow also reads its own history and state with (what it once accepted stays valid).
CONTROL_CHARACTERS = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f"  # as Python and JSON Schema write them
CONTROL_CHARACTER = re.compile(f"[{CONTROL_CHARACTERS}]")


def control_character(value: Any, path: str = "") -> str | None:
    """Where a string of a JSON value (a key or a value) holds a control character other than tab and line
    breaks, as ``field: reason`` (the parent's name, or ``body``, where a key is no field name), or None."""
    if isinstance(value, str):
        match = CONTROL_CHARACTER.search(value)
        return None if match is None else (f"{path or 'body'}: contains the control character "
                                           f"U+{ord(match.group()):04X}; text may hold tab, line feed and "
                                           "carriage return only")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, int):
            name = f"{path or 'body'}[{key}]"
        elif SAFE_FIELD_NAME.fullmatch(key):
            name = f"{path}.{key}".lstrip(".")
        else:  # no field name of ours: named by where it is, and refused if it holds one itself
            name = path or "body"
            found = control_character(key, name)
            if found:
                return found.replace(": contains", ": a key contains", 1)
        found = control_character(item, name)
        if found:
            return found
    return None


def parse_scenario(raw: Any) -> Scenario:
    """Validate a whole scenario file, events included, before anything runs; every error is
    reported at once (an invalid patient does not hide the events' errors)."""
    try:
        scenario: Scenario | None = Scenario.model_validate(raw)
    except ValidationError as exc:
        scenario, errors = None, describe(exc, whole="scenario")
    else:
        errors = []
    until_day: float | None
    if scenario is not None:
        events, until_day = scenario.events, scenario.until_day
    else:  # the events as sent, where they are a list of objects (their own errors are already named)
        sent = raw.get("events") if isinstance(raw, dict) else None
        events = [e for e in sent if isinstance(e, dict)] if isinstance(sent, list) and \
            all(isinstance(e, dict) for e in sent) else []
        until = raw.get("until_day") if isinstance(raw, dict) else None
        until_day = float(until) if isinstance(until, (int, float)) and not isinstance(until, bool) else None
    errors += _event_errors(events, until_day)
    if (found := control_character(raw, "scenario")) is not None:
        errors.append(found.removeprefix("scenario."))
    if errors or scenario is None:
        raise ContractError(errors)
    return scenario


def _event_errors(events: list[dict[str, Any]], until_day: float | None) -> list[str]:
    """What is wrong with a scenario's events: each one's fields, and their days (in order, by until_day)."""
    errors: list[str] = []
    last_day = 0.0
    for i, raw_event in enumerate(events):
        where = f"events[{i}]."
        try:
            day = ScenarioEvent.model_validate(raw_event).day
        except ValidationError as exc:
            errors += describe(exc, where)
            continue
        if "observed_at" in raw_event:
            errors.append(f"{where}observed_at: not allowed in a scenario (the day sets it)")
        if day < last_day:
            errors.append(f"{where}day: {day:g} comes before the previous event's day {last_day:g}")
        if until_day is not None and day > until_day:
            errors.append(f"{where}day: {day:g} is after until_day {until_day:g}")
        last_day = max(last_day, day)
        try:
            _event_adapter.validate_python({k: v for k, v in raw_event.items() if k not in ("day", "observed_at")})
        except ValidationError as exc:
            errors += describe(exc, where)
    return errors
