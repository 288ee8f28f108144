"""Checks of request input beyond the JSON itself: contract events (with the sender's own field
names in errors) and acknowledgement bodies.

The API is stricter than the workflow about one thing: ``observed_at`` must be an RFC 3339
date-time text with seconds and a time zone (what the OpenAPI schema says), not a number or a
bare date that a lenient parser would read somehow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from api.bodies import NO_BODY
from api.errors import ApiError
from api.models import AcknowledgeBody
from pathway.contract import (
    UNKNOWN_FIELD,
    ContractError,
    Event,
    control_character,
    parse_event,
    safe_location,
    safe_message,
    text_fields,
)
from pathway.intake import CLOCK_SKEW


def date_time_pattern(*, fhir: bool = False) -> str:
    """RFC 3339 date-time with seconds and a zone, as a regex every engine reads alike: year
    0001-9999, seconds below 60 (what Python's datetime can hold). ``fhir`` also keeps zone
    offsets within FHIR's +/-14:00."""
    year = "([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
    offset = "[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)" if fhir else "[+-]([01][0-9]|2[0-3]):[0-5][0-9]"
    return (f"^{year}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
            f"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{{1,9}})?(Z|{offset})$")


OBSERVED_AT = date_time_pattern()
_OBSERVED_AT = re.compile(OBSERVED_AT)


# What the API refuses of an observed_at (or effectiveDateTime) that JSON Schema cannot say.
OBSERVED_TOO_EARLY = ("A pain report observed before the patient's enrollment, or a result observed before the "
                      "fracture (more than onset_days_before_enrollment and a day before enrollment), is refused "
                      "(422): it tells the pathway nothing about this fracture.")


def valid_event(raw: Any, field_names: dict[str, str] | None = None) -> Event:
    """The contract event, or 422 naming the sender's fields (e.g. FHIR ``valueInteger``)."""
    names, problems = field_names or {}, []
    when = names.get("observed_at", "observed_at")
    observed_at = raw.get("observed_at") if isinstance(raw, dict) else None
    if observed_at is not None and not (isinstance(observed_at, str) and _OBSERVED_AT.fullmatch(observed_at)):
        problems.append(f"{when}: expected a date-time with seconds and a time zone, e.g. 2026-01-31T09:00:00Z")
        raw = {k: v for k, v in raw.items() if k != "observed_at"}  # the rest is judged all the same
    elif isinstance(observed_at, str) and _is_future(observed_at):
        problems.append(f"{when}: is in the future")
    if isinstance(raw, dict):  # free text (drug, reason, ...) holds no control character: PostgreSQL takes no NUL
        problems += [found for name in sorted(text_fields(str(raw.get("type")))) if name in raw
                     and (found := control_character(raw[name], names.get(name, name)))]
    try:
        event = parse_event(raw)
    except ContractError as exc:
        problems += _rename(exc.errors, names)
    if problems:  # every fault in one answer, the time first
        raise ApiError(422, "invalid event", problems)
    return event


def _is_future(observed_at: str) -> bool:
    """Whether a well-formed ``observed_at`` lies beyond the clock skew allowed (a zone is always given)."""
    try:
        return datetime.fromisoformat(observed_at) > datetime.now(UTC) + CLOCK_SKEW
    except ValueError:
        return False  # the contract reads it and names what is wrong


def _rename(errors: list[str], names: dict[str, str]) -> list[str]:
    """Name the sender's fields instead of the contract's."""
    out = []
    for line in errors:
        field, sep, reason = line.partition(":")
        out.append(f"{names.get(field, field)}{sep}{reason}")
    return out


def acknowledgement(body: Any) -> AcknowledgeBody:
    """An acknowledgement body (no body at all: no note); 422 naming each field otherwise."""
    if body is NO_BODY:
        return AcknowledgeBody()
    try:
        return AcknowledgeBody.model_validate(body)
    except ValidationError as exc:
        reasons = {"extra_forbidden": "unknown field", "string_pattern_mismatch": "expected text, not only spaces"}
        lines = []
        for e in exc.errors():
            loc, safe = safe_location(e["loc"])
            lines.append(f"{'.'.join(loc) or 'body'}: "
                         f"{reasons.get(e['type'], safe_message(e)) if safe else UNKNOWN_FIELD}")
        raise ApiError(422, "invalid request", list(dict.fromkeys(lines))) from None


def status_note(ack: AcknowledgeBody) -> str:
    """The order's status note for an acknowledgement."""
    text = "acknowledged"
    if ack.author:
        text += f" by {ack.author}"
    if ack.reason:
        text += f": {ack.reason}"
    return text

