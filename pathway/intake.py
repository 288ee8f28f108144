"""Intake: may an event apply to a pathway now, and if not, why not.

Pure. The workflow's signal path, its update validator and its apply step, and the tests, all
ask the same two questions here, so an event is judged one way wherever it enters:

- :func:`admit`, on receipt: is it a well-formed contract event, is the pathway still running,
  was its ``event_id`` seen already, and when was it observed (a report stamped in the future
  is refused; one from before enrollment counts at day 0 — unless the next question refuses it)?
- :func:`clinical_rejection`, when it is applied in turn (earlier events may have changed the
  facts since receipt): does it make sense for this patient now — and (revision 9 on,
  :func:`observed_too_early`) was it observed so early that it tells this pathway nothing?

A refusal names the field and the reason; nothing already accepted is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from pathway.contract import (
    EVENT_TYPES,
    ClinicianEvent,
    ContractError,
    DxaEvent,
    Event,
    MriEvent,
    PainEvent,
    PathwayStatus,
    RadiographEvent,
    parse_event,
)
from pathway.facts import PatientFacts, decisions_of, more_than, mri_results, pause_state
from pathway.guideline import PathwayDefinition
from pathway.revision import REVISION

# Reports stamped up to this far ahead of the receiving clock are taken as clock skew.
CLOCK_SKEW = timedelta(minutes=5)


class InboxItem(BaseModel):
    """An admitted event waiting its turn: its arrival number and the pathway day it was observed."""

    seq: int
    day: float
    event: dict[str, Any]

    def parsed(self) -> Event:
        """The event, validated again (it was valid on receipt)."""
        return parse_event(self.event)


@dataclass(frozen=True)
class Admission:
    """The answer on receipt: the event and its day, or why not (``duplicate`` is no refusal)."""

    event: Event | None = None
    day: float = 0.0
    reason: str | None = None
    duplicate: bool = False


def admit(payload: Any, *, status: PathwayStatus, seen_event_ids: list[str], enrolled_at: datetime,
          now: datetime, event_type: str | None = None) -> Admission:
    """Judge an event on receipt; ``event_type`` is the type its signal name implies, if any."""
    if event_type is not None:
        if not isinstance(payload, dict):
            return Admission(reason=f"body: expected a JSON object for a {event_type} event")
        if payload.get("type", event_type) != event_type:
            sent = payload["type"]  # quoted only when it is a contract type: nothing else the sender wrote is
            return Admission(reason=f"type: {sent!r} sent on the {event_type!r} signal" if sent in EVENT_TYPES
                             else f"type: not {event_type!r}, the signal it was sent on")
        payload = {**payload, "type": event_type}
    try:
        event = parse_event(payload)
    except ContractError as exc:
        return Admission(reason=str(exc))
    if status != "running":
        return Admission(event=event, reason=f"the pathway has ended ({status})")
    if event.event_id is not None and event.event_id in seen_event_ids:
        return Admission(event=event, day=day_of(now, enrolled_at), duplicate=True)
    at = event.observed_at or now
    if at > now + CLOCK_SKEW:
        return Admission(event=event, reason="observed_at: is in the future")
    # A result observed before enrollment counts as known at enrollment.
    return Admission(event=event, day=max(0.0, day_of(min(at, now), enrolled_at)))


def clinical_rejection(defn: PathwayDefinition, facts: PatientFacts, event: Event, day: float,
                       revision: int = REVISION, observed_day: float | None = None) -> str | None:
    """Why a well-formed event observed on pathway day ``day`` cannot apply now, or None (by the
    decisions' ``revision``, :data:`pathway.revision.REVISION`); ``observed_day``: the day its
    ``observed_at`` names, before it was counted at day 0 (negative: before enrollment)."""
    if revision >= 9 and observed_day is not None:
        early = observed_too_early(event, observed_day, facts.enrollment.onset_days_before_enrollment)
        if early is not None:
            return early
    if isinstance(event, ClinicianEvent):
        return _decision_rejection(defn, facts, event, day, revision)
    if isinstance(event, MriEvent) and any(e in ("malignant", "infection") for _, e in mri_results(facts)):
        return "etiology: the pathway already exited on a pathologic MRI"
    return None


def _decision_rejection(defn: PathwayDefinition, facts: PatientFacts, event: ClinicianEvent, day: float,
                        revision: int) -> str | None:
    decision, paused = event.decision, pause_state(facts).paused
    if decision == "pause" and paused:
        return "decision: the pathway is already paused"
    if decision == "resume" and not paused:
        return "decision: the pathway is not paused"
    if decision == "confirm_nerve_block":
        if "offer_nerve_block" not in facts.taken:
            return "decision: no nerve-block offer to confirm"
        if decisions_of(facts, "confirm_nerve_block"):
            return "decision: the nerve block is already confirmed"
        until = defn.rules.nerve_block_until_day.value
        if defn.safety is not None and more_than(day, until):
            return (f"decision: the nerve-block offer expired at the end of the acute phase (day {until:g}) "
                    "without confirmation")
    if decision == "decline_augmentation" and decisions_of(facts, "decline_augmentation"):
        return "decision: augmentation is already declined"
    referred = facts.taken.get("refer_vertebral_augmentation")
    if decision == "decline_augmentation" and referred is not None and revision >= 3:
        # Too late to decline by decision: the referral is an order the care team withdraws.
        return (f"decision: the augmentation referral was already made on day {referred:g}; it is an open "
                "order: the care team cancels it")
    return None


def observed_too_early(event: Event, observed_day: float, onset_days: int) -> str | None:
    """Why an event observed on pathway day ``observed_day`` (negative: before enrollment) tells the
    pathway nothing, or None: a pain report from before enrollment (the enrollment's ``pain_nrs`` is
    the score at day 0: an older one would stand in for it, and lower the baseline a flare is measured
    from), or a result from before the fracture (more than its onset's day before enrollment: it
    answers none of the pathway's orders). Within the clock skew of enrollment an event counts at day 0;
    another from before enrollment too (a bed-bound spell, a deficit, a decision), and a result taken
    since the fracture's onset (an MRI in the emergency department)."""
    skew = CLOCK_SKEW / timedelta(days=1)
    if observed_day >= -skew:
        return None
    before = f"observed_at: {_readable_days_before(-observed_day)} before enrollment"
    if isinstance(event, PainEvent):
        return (f"{before}: a pain report from before enrollment does not count (the enrollment's pain_nrs is the "
                "score at day 0)")
    if isinstance(event, (MriEvent, RadiographEvent, DxaEvent)) and observed_day < -(onset_days + 1) - skew:
        return (f"{before}, before the fracture (its onset was {onset_days} day(s) before enrollment): a result from "
                "then answers none of the pathway's orders")
    return None


def _readable_days_before(days: float) -> str:
    """A span before enrollment as a reader says it: "7 minutes", "25 hours", "3.2 days", "12 years"."""
    if days < 1 / 24:
        return f"{days * 1440:.0f} minutes"
    if days < 2:
        return f"{days * 24:.0f} hours"
    if days >= 730:
        return f"{days / 365.25:.0f} years"
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"


def day_of(at: datetime, enrolled_at: datetime) -> float:
    """Days from enrollment to ``at`` (the pathway clock)."""
    return (at - enrolled_at).total_seconds() / 86400
