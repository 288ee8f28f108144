"""Checks of request input beyond the JSON itself: contract events (with the sender's own field
names in errors) and acknowledgement bodies."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from api.errors import ApiError
from pathway.contract import ContractError, Event, parse_event
from pathway.intake import CLOCK_SKEW


def valid_event(raw: Any, field_names: dict[str, str] | None = None) -> Event:
    """The contract event, or 422 naming the sender's fields."""
    try:
        event = parse_event(raw)
    except ContractError as exc:
        raise ApiError(422, "invalid event", _rename(exc.errors, field_names or {})) from None
    if event.observed_at is not None and event.observed_at > datetime.now(timezone.utc) + CLOCK_SKEW:
        name = (field_names or {}).get("observed_at", "observed_at")
        raise ApiError(422, "invalid event", [f"{name}: is in the future"])
    return event


def _rename(errors: list[str], names: dict[str, str]) -> list[str]:
    """Name the sender's fields (e.g. FHIR ``valueInteger``) instead of the contract's."""
    out = []
    for line in errors:
        field, sep, reason = line.partition(":")
        out.append(f"{names.get(field, field)}{sep}{reason}")
    return out


def ack_reason(body: Any) -> str:
    """The status note of an acknowledgement body (optional reason and author); 422 otherwise."""
    if body is None:
        return "acknowledged"
    problems = []
    if not isinstance(body, dict):
        raise ApiError(422, "invalid request", ["body: expected a JSON object with optional reason and author"])
    for key in body:
        if key not in ("reason", "author"):
            problems.append(f"{key}: unknown field")
    for key, limit in (("reason", 500), ("author", 200)):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > limit):
            problems.append(f"{key}: expected a non-empty string of at most {limit} characters")
    if problems:
        raise ApiError(422, "invalid request", problems)
    text = "acknowledged"
    if body.get("author"):
        text += f" by {body['author']}"
    if body.get("reason"):
        text += f": {body['reason']}"
    return text
