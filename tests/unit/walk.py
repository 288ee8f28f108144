"""The workflow's loop played by hand over the pure core, for the unit tests of decisions: decide,
record what was taken and noted, add observations, decide again later."""

from __future__ import annotations

from pathway.contract import Action, Enrollment, parse_event
from pathway.decisions import REVISION, Decision, decide, next_due
from pathway.facts import READ_MARGIN, SETTLE, PatientFacts
from pathway.intake import clinical_rejection
from pathway.results import observe, take


def enrollment(**overrides) -> Enrollment:
    """An L2 fracture, 25% height loss, moderate pain, enrolled on the day of the fracture."""
    raw = {"id": "pt-t01", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 6,
           "onset_days_before_enrollment": 0, "red_flags": []}
    return Enrollment.model_validate({**raw, **overrides})


class Walk:
    """The workflow loop, by hand: events at their day, then whatever is due."""

    def __init__(self, definition, revision: int = REVISION, **enroll):
        self.defn, self.revision = definition, revision
        self.facts = PatientFacts(enrollment=enrollment(**enroll))
        self.actions: list[Action] = []
        self.notes = []
        self.status = "running"
        self.rejected: list[str] = []
        self.now = 0.0
        self.at(0)

    def at(self, now: float) -> Decision:
        """Decide at ``now`` and record the result as the workflow does."""
        decision = decide(self.defn, self.facts, now, self.revision)
        self.now = now
        take(self.facts, decision.actions, now, self.revision)
        self.facts.noted += [n.id for n in decision.notes]
        self.actions += decision.actions
        self.notes += decision.notes
        self.status = decision.status
        return decision

    def alarm(self, day: float) -> Decision:
        """Decide when the alarm for ``day`` rings: a second after it, as the workflow's do (a step
        scheduled for ``day`` is due once its instant has passed)."""
        return self.at(day + SETTLE)

    def event(self, day: float, arrives: float | None = None, **raw) -> Decision | None:
        """Apply one event observed at ``day`` (refused events are kept in ``rejected``), then decide
        when it arrives (``arrives``: later, for a report that comes after the day it was observed)."""
        event = parse_event(raw)
        reason = clinical_rejection(self.defn, self.facts, event, day, self.revision)
        if reason:
            self.rejected.append(reason)
            return None
        observe(self.facts, day, event, self.revision, self.defn)
        return self.at(day if arrives is None else arrives)

    def pain(self, day: float, nrs: int) -> Decision | None:
        return self.event(day, type="pain", nrs=nrs)

    def clinician(self, day: float, decision: str) -> Decision | None:
        return self.event(day, type="clinician", decision=decision, reason="test", author="dr-test")

    def until(self, day: float) -> None:
        """Decide when each alarm rings up to ``day`` — a second after the due instant, as the
        workflow's alarms do ("more than N days" holds only just after its instant) — then at ``day``.
        As ``vcf simulate`` reads a scenario, the steps scheduled for ``day`` itself have run."""
        read = day + READ_MARGIN
        while self.status == "running":
            dues = [d.day + SETTLE for d in next_due(self.defn, self.facts, self.now, self.revision)
                    if d.day + SETTLE <= read]
            if not dues:
                break
            self.at(min(dues))
        self.at(max(day, self.now))

    def of(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]

    def kinds(self) -> list[str]:
        return [a.kind for a in self.actions]


def confirmed(w: Walk, day: float = 3) -> Walk:
    """The walk after an MRI result saying osteoporotic (PT and referrals need one from vcf-1.2)."""
    w.event(day, type="mri", etiology="osteoporotic")
    return w
