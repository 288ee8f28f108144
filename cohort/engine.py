"""One patient through the pure core, on a simulated clock, with the workflow's timing rules.

The durable workflow (``workflows/patient_pathway.py``) asks :func:`pathway.decisions.decide`
what to do when an event is applied and when one of its alarms rings; this driver asks it at the
same instants and records what it answers the same way:

- an event observed on day *d* is judged by :func:`pathway.intake.clinical_rejection`, appended to
  the facts, and decided at *d* — and once more when the workflow's inbox is empty (a refused
  event is decided at too); events on day *d* come before the steps due on day *d*;
- the workflow keeps one alarm, for the earliest instant it is told of
  (:func:`pathway.decisions.next_due` and the overdue-result checks of
  :func:`pathway.results.overdue_checks`, asked after each round): an alarm still ahead is
  cancelled for an earlier instant, and one that a later report made stale (a moved follow-up
  check) still rings and re-arms. It is decided at *t* + 1 s, when the alarm rings ("more than N
  days" instants are N days + 2 s, ``pathway.facts.check_after``);
- after each decide, while the pathway runs, overdue results escalate once each (a note
  ``overdue:ACTION_ID``), as the workflow does from vcf-1.1 on;
- the clock stops 1.5 s after the horizon, as ``vcf simulate`` reads a scenario.

Work that cannot change an answer is skipped: ``overdue_orders`` is asked only once an overdue
instant has passed. ``--check-temporal`` and the workflow test compare both
engines action by action.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from cohort.patients import Patient
from pathway.contract import Event, PainEvent
from pathway.decisions import decide, next_due
from pathway.facts import READ_MARGIN, SETTLE, PatientFacts
from pathway.guideline import PathwayDefinition
from pathway.intake import clinical_rejection
from pathway.results import observe, overdue_checks, overdue_note_id, overdue_orders, take

# Details carried into actions.csv (the rest stay in the workflow's own record).
KEY_DETAILS = ("priority", "level", "reason", "trigger", "criteria", "suggested_procedure", "scheduled_days",
               "etiology", "expedite_mri", "missing")

ActionRow = tuple[float, str, str, str]  # day, kind, id, key details


@dataclass
class PatientRun:
    """What the pathway did for one patient, in compact form (cheap to send between processes)."""

    index: int
    status: str
    end_day: float
    actions: list[ActionRow]
    escalations: list[tuple[float, str]]  # day, the overdue order's action id
    pain: list[tuple[float, int]]  # reports the pathway applied
    rejected: int
    decides: int
    second_decides: int = 0  # decides repeated after an event that changed something (as the workflow)
    second_found: int = 0  # ... and those that found anything new
    events: list[tuple[float, Event]] = field(default_factory=list)  # applied or refused, in order


def key_details(details: dict[str, Any]) -> str:
    """The key details of an action as ``key=value;...`` (lists joined with ``+``)."""
    parts = []
    for key in KEY_DETAILS:
        value = details.get(key)
        if value is None or value == [] or value is False:
            continue
        if isinstance(value, list):
            value = "+".join(str(v) if not isinstance(v, dict) else str(v.get("id", v)) for v in value)
        parts.append(f"{key}={value}")
    return ";".join(parts)


def run_patient(defn: PathwayDefinition, patient: Patient, horizon: float, keep_events: bool = False) -> PatientRun:
    """Drive one patient from enrollment to the end of its pathway or the horizon."""
    facts = PatientFacts(enrollment=patient.enrollment)
    queue: list[tuple[float, int, Event]] = []
    seq = 0

    def push(day: float, event: Event) -> None:
        nonlocal seq
        if day <= horizon:
            heapq.heappush(queue, (day, seq, event))
            seq += 1

    for day, event in patient.background:
        push(day, event)
    run = PatientRun(index=patient.index, status="running", end_day=horizon, actions=[], escalations=[],
                     pain=[], rejected=0, decides=0)
    taken, noted = facts.taken, facts.noted

    # Instants at which an open order becomes overdue (each was in the future when armed): only a
    # round past one of them can find an order to escalate.
    overdue_at: list[float] = []

    def round_at(now: float) -> bool:
        """Decide at ``now`` and record it; whether anything new came of it."""
        decision = decide(defn, facts, now)
        run.decides += 1
        for note in decision.notes:
            noted.append(note.id)
        take(facts, decision.actions, now)
        for action in decision.actions:
            run.actions.append((action.day, action.kind, action.id, key_details(action.details)))
            for day, event in patient.respond(action.id, action.kind, action.details, now):
                push(day, event)
        if decision.status != "running":
            run.status, run.end_day = decision.status, round(now, 3)
            return True
        changed = bool(decision.actions or decision.notes)
        passed = False
        while overdue_at and overdue_at[0] < now:
            heapq.heappop(overdue_at)
            passed = True
        if passed:
            for overdue in overdue_orders(defn, facts, now):
                note_id = overdue_note_id(overdue.order.action_id)
                if note_id not in noted:
                    noted.append(note_id)
                    run.escalations.append((round(now, 3), overdue.order.action_id))
                    changed = True
        return changed

    # The workflow's one alarm (ONE_ALARM_PATCH): the instant it rings, or None. The instants it is
    # armed from depend on the facts alone (those still ahead are taken), so they are asked again
    # only after the facts changed.
    alarm: float | None = None
    ahead: list[float] = []
    asked: tuple[int, int, int] | None = None
    checks: set[float] = set()

    def arm(now: float) -> None:
        nonlocal alarm, ahead, asked
        state = (len(facts.observations), len(taken), len(noted))
        if state != asked:
            asked = state
            found = overdue_checks(defn, facts, now)
            for check in found:
                if check not in checks:
                    checks.add(check)
                    heapq.heappush(overdue_at, check)
            ahead = sorted({*(due.day for due in next_due(defn, facts, now)), *found}, reverse=True)
        while ahead and ahead[-1] <= now:
            ahead.pop()
        if alarm is not None and alarm <= now:
            alarm = None  # it rang
        if not ahead:
            return
        at = ahead[-1] + SETTLE
        if alarm is None or alarm > at:
            alarm = at  # a later alarm still ahead is cancelled; an earlier one is left to ring and re-arm

    now = 0.0
    round_at(now)
    end = horizon + READ_MARGIN
    while run.status == "running":
        arm(now)
        ring = alarm if alarm is not None else end + 1
        if queue and queue[0][0] <= ring:
            day, _, event = heapq.heappop(queue)
            if keep_events:
                run.events.append((day, event))
            reason = clinical_rejection(defn, facts, event, day)
            if reason:  # recorded as refused; the workflow decides all the same once its inbox is empty
                run.rejected += 1
                now = day
                round_at(now)
                continue
            observe(facts, day, event, defn=defn)
            if isinstance(event, PainEvent):
                run.pain.append((day, event.nrs))
            now = day
            # The workflow decides when it applies the event, and once more when its inbox is empty
            # (the second finds nothing unless the first did something).
            if round_at(now) and run.status == "running":
                run.second_decides += 1
                if round_at(now):
                    run.second_found += 1
        elif ring <= end:
            now = ring
            round_at(now)
        else:
            break
    return run
