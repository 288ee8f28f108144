"""What one call of the decisions produces, and the builder that collects it.

An action or note has a stable id per cause; the builder skips an id that was already taken or
noted, so deciding again over the same facts never proposes anything twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import inf
from typing import Any

from pathway.contract import Action, ActionKind, PathwayStatus
from pathway.facts import SAME_INSTANT, PatientFacts, osteoporotic_mri_day, standing_osteoporotic_mri_day
from pathway.guideline import PathwayDefinition, Rule, Schedule
from pathway.results import enrolled_level_mri_day
from pathway.revision import REVISION


@dataclass(frozen=True)
class Note:
    """A decision that is not an action (a hold, a review without referral, a result read)."""

    id: str
    day: float
    text: str
    citation: str = ""


@dataclass
class Decision:
    """What the pathway should do now."""

    actions: list[Action] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    status: PathwayStatus = "running"


# The guideline step each reason for a clinician review is about (its citation names that section first).
REVIEWED_STEP: dict[str, ActionKind] = {
    "review_evidence_missing": "refer_vertebral_augmentation",  # If Pain Persists After 3 Months
    "indeterminate_mri": "order_mri",  # Ruling out pathologic fracture
    "withdrawal_handover": "order_radiograph",  # Monitoring and Follow-up: the open orders
    "pathologic_exit_medications": "refer_pathologic_fracture_workup",
    "opioid_review": "prescribe_opioid_short_course",  # Pain Control
    "side_effect": "prescribe_first_line_analgesia",  # Pain Control: the drugs it names side effects of
}


class Builder:
    """Collects new actions and notes for one decision, skipping those already taken or noted."""

    def __init__(self, defn: PathwayDefinition, facts: PatientFacts, now: float, revision: int = REVISION):
        self.defn, self.facts, self.now, self.revision = defn, facts, now, revision
        # Whether this patient's guideline version carries the clinical safety rules (vcf-1.2).
        self.safety = defn.safety is not None
        self.decision = Decision()
        # Ids proposed in this decision (empty while it is); earlier ones are read from the facts.
        self._taken, self._noted = facts.taken, facts.noted_ids()
        self.proposed: set[str] = set()
        # What pathway.quiet compares, read once per decision: the index caught up, how many
        # observations it holds, and how many actions and notes there are.
        self.views = views = facts.views()
        self.quiet = views.quiet
        self.observations_seen = views.count
        self.arrived = views.arrived  # the observations indexed last: from how many, of which classes
        self.actions_seen = (len(facts.taken), len(facts.noted))
        self.until = inf  # the earliest instant at which a step could answer otherwise (pathway.quiet)
        # An action or note is dated when it is decided, not on the earlier day of late evidence
        # (revision 3); enrollment actions are the enrollment's, at day 0 (decisions._enrollment lowers this).
        self.earliest_day = now if revision >= 3 else -inf

    def reached(self, day: float) -> bool:
        """Whether a step scheduled for ``day`` is due now: from revision 4, only once its instant has
        passed (by more than :data:`pathway.facts.SAME_INSTANT`; its alarm rings a second after it), so
        every event observed at that instant — a scenario's events of that day — comes first; before,
        as soon as the instant came."""
        return self.now > day + SAME_INSTANT if self.revision >= 4 else self.now >= day

    def at_instant(self, day: float) -> bool:
        """Whether ``now`` is at the instant of ``day`` but the step scheduled for it is not due yet
        (within :data:`pathway.facts.SAME_INSTANT` of it; revision 4 on)."""
        return abs(self.now - day) <= SAME_INSTANT and not self.reached(day)

    def next_instant(self, *days: float) -> float:
        """The earliest of ``days`` not yet :meth:`reached` (infinity if none): when a step scheduled
        for one of them could first answer otherwise (for :mod:`pathway.quiet`)."""
        first = inf
        for day in days:
            if not self.reached(day) and day < first:
                first = day  # at or a little before the instant it is reached: always safe
        return first

    def osteoporotic_mri(self) -> float | None:
        """Day of the MRI result saying osteoporotic that PT and referrals rest on (from revision 2: the
        latest result must say so; from revision 6: of the enrolled fracture's region), or None."""
        if self.revision >= 6:
            return enrolled_level_mri_day(self.defn, self.facts)
        return (standing_osteoporotic_mri_day if self.revision >= 2 else osteoporotic_mri_day)(self.facts)

    def done(self, action_id: str) -> bool:
        """Whether an action or note with this id was already taken or noted."""
        return action_id in self.proposed or action_id in self._taken or action_id in self._noted

    def act(self, action_id: str, kind: ActionKind, day: float, rationale: str,
            basis: tuple[Rule | Schedule, ...] = (), **details: Any) -> None:
        """Propose an action unless its id was taken; ``basis`` names the rules it rests on."""
        if not self.done(action_id):
            self._propose(action_id, kind, day, rationale, self.defn.cite(kind, basis), details)

    def _propose(self, action_id: str, kind: ActionKind, day: float, rationale: str, citation: str,
                 details: dict[str, Any]) -> None:
        self.proposed.add(action_id)
        day = max(day, self.earliest_day)
        self.decision.actions.append(Action(id=action_id, day=round(day, 3), kind=kind,
                                            rationale=readable_days(rationale), citation=citation, details=details))

    def review(self, action_id: str, reason: str, day: float, rationale: str, about: ActionKind | None = None, /,
               **details: Any) -> None:
        """Ask the care team to look at something (``request_clinician_review``); the citation names the
        guideline section of the step it is about (``about``, else the reason's), then the safety rules
        that ask for it."""
        review_id = f"request_clinician_review:{action_id}"
        if not self.done(review_id):
            citation = self.defn.cite("request_clinician_review", about=about or REVIEWED_STEP.get(reason))
            self._propose(review_id, "request_clinician_review", day, rationale, citation,
                          {"reason": reason, **details})

    def note(self, note_id: str, day: float, text: str, citation: str = "") -> None:
        """Record a decision note unless its id was noted."""
        if self.done(note_id):
            return
        self.proposed.add(note_id)
        self.decision.notes.append(Note(note_id, round(max(day, self.earliest_day), 3), readable_days(text), citation))


# A pathway day in a text, written with more precision than a reader needs: an event sent through the
# API is observed at an instant ("day 0.000294042", "day 7.89467e-05"), a scenario's on a whole day.
_PRECISE_DAY = re.compile(r"\b(days? )(\d+(?:\.\d+)?e-\d+|\d+\.\d{4,})")


def readable_days(text: str) -> str:
    """``text`` with each pathway day given to more than three decimals rounded to two (a quarter of an
    hour): "day 0" for an instant seconds after enrollment. Days as scenarios write them stay as written."""
    return _PRECISE_DAY.sub(lambda m: f"{m.group(1)}{round(float(m.group(2)), 2):g}", text)


def sentence(text: str) -> str:
    """``text`` opening a sentence: its first letter capitalised, the rest as written ("MRI" stays)."""
    return text[:1].upper() + text[1:]
