"""The guideline's decisions: patient facts and the pathway clock in, actions out.

Pure and deterministic — no Temporal, no I/O — so a clinician can read it and the tests can
probe both sides of every threshold. Every action carries the facts and the threshold that
made it fire (``rationale``) and the guideline line behind it (``citation``, which says
"(verify)" where a rule it rests on is a local default). Each action has a stable ``id`` per
cause: deciding again over the same facts never proposes it twice.

The steps live beside it: :mod:`pathway.medication` (calcitonin, the opioid course),
:mod:`pathway.responses` (answers to new information), :mod:`pathway.review` (the 12-week review).

Conventions:
- ``now`` and every ``day`` count days from enrollment (day 0).
- "More than N days" is strict: a report landing exactly at N days is in time.
- A clinician's *pause* holds the schedule (radiographs, review, screenings, follow-up
  outreach); responses to new clinical information still fire, and held steps fire on resume.
- From vcf-1.2 the safety rules apply (docs/clinical-decisions.md): referrals rest on current
  evidence, PT and augmentation wait for an MRI saying osteoporotic, and what needs a clinician's
  eyes — an indeterminate MRI, a side effect, the opioid course, a hand-over — becomes a
  ``request_clinician_review``. Patients enrolled on earlier versions keep those versions' rules.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from operator import attrgetter

from pathway.builder import Builder, Decision, Note, sentence
from pathway.contract import ActionKind, ClinicianEvent, MobilityEvent, PainEvent, PathwayStatus
from pathway.facts import (
    GRACE,
    SAME_INSTANT,
    PatientFacts,
    bed_bound_spells,
    check_after,
    decisions_of,
    gap_day,
    genant_grade,
    latest_pain,
    more_than,
    neuro_deficit_open,
    pause_state,
    presumed,
)
from pathway.guideline import PathwayDefinition, Rule, derived
from pathway.medication import (
    calcitonin_hard_stop,
    calcitonin_withheld,
    opioid_order,
    opioid_review,
    stop_calcitonin,
)
from pathway.quiet import more_than_from, nothing_new, remember, step, steps
from pathway.responses import (
    CANCELLED_ON_EXIT,
    imaging_text,
    immobilization,
    pain_responses,
    pathologic_fracture,
    radiograph_findings,
    results_read,
    side_effects,
    urgent_safety,
    withdrawal_handover,
)
from pathway.results import radiograph_days_ordered
from pathway.review import REVIEW, pulmonary_criterion_resolved, review_criteria, review_held, twelve_week_review
from pathway.revision import REVISION

__all__ = ["CANCELLED_ON_EXIT", "REVIEW", "REVISION", "Decision", "Due", "Note", "decide", "escalation_state",
           "next_due", "next_scheduled_step", "phase", "review_criteria"]


@dataclass(frozen=True)
class Due:
    """A future instant at which the decisions must be asked again (a named timer)."""

    day: float
    label: str


def decide(defn: PathwayDefinition, facts: PatientFacts, now: float, revision: int = REVISION) -> Decision:
    """Everything the guideline calls for at pathway day ``now`` that has not been done yet (by the
    decisions' ``revision``, :data:`pathway.revision.REVISION`; one facts object is decided by one)."""
    if nothing_new(defn, facts, now):
        return Decision()
    b = Builder(defn, facts, now, revision)
    _enrollment(b)
    if _urgent_findings(b):
        b.decision.status = "exited"
        return b.decision
    withdrawals = decisions_of(facts, "withdraw")
    if withdrawals:
        if revision < 6 or not b.safety:  # from revision 6 the hand-over cancels nothing (safety rule 6)
            stop_calcitonin(b, withdrawals[0][0], "the patient was withdrawn from the pathway")
        withdrawal_handover(b, withdrawals[0][0], _steps_not_taken(b))
        b.decision.status = "withdrawn"
        return b.decision
    _medication(b)
    pain_responses(b)
    _findings(b)
    pulmonary_criterion_resolved(b)  # reads the referral: outside the group, which reads only its own
    if not pause_state(facts).paused:
        _schedule(b)
        twelve_week_review(b)
        _follow_up_gaps(b)
    elif revision >= 5:
        twelve_week_review(b)  # a criterion found after a decided review is new information: not held
    if _completed(defn, facts, b):
        b.decision.status = "completed"
    return remember(b, until=b.next_instant(defn.rules.completion_day.value))


# Steps that mostly stay quiet, checked together (pathway.quiet.steps).

@steps(urgent_safety, pathologic_fracture)
def _urgent_findings(b: Builder) -> bool:
    """A neurological deficit, and an MRI showing a pathologic fracture (then the pathway exits)."""
    urgent_safety(b)
    return pathologic_fracture(b)


@steps(calcitonin_hard_stop, opioid_review)
def _medication(b: Builder) -> None:
    calcitonin_hard_stop(b)
    opioid_review(b)


@steps(side_effects, radiograph_findings, immobilization, results_read)
def _findings(b: Builder) -> None:
    side_effects(b)
    radiograph_findings(b)
    immobilization(b)
    results_read(b)


# --- Enrollment ---------------------------------------------------------------------------

def _enrollment(b: Builder) -> None:
    if b.done("prescribe_first_line_analgesia"):
        return  # every enrollment action comes with the first decision
    earliest, b.earliest_day = b.earliest_day, 0  # enrollment actions are recorded at day 0
    _enrollment_actions(b)
    b.earliest_day = earliest


def _enrollment_actions(b: Builder) -> None:
    e, r = b.facts.enrollment, b.defn.rules
    grade = genant_grade(b.defn, e.height_loss_pct)
    fracture = presumed(b.facts)
    withheld = calcitonin_withheld(b)
    b.act("prescribe_first_line_analgesia", "prescribe_first_line_analgesia", 0,
          f"Enrollment with a {fracture} {e.fracture_level} fracture, pain NRS {e.pain_nrs}: "
          "acetaminophen and an NSAID are first-line."
          + (f" Calcitonin not started: {withheld}." if withheld else ""),
          drugs=["acetaminophen", "NSAID (ibuprofen or naproxen)"])
    if e.pain_nrs >= r.severe_pain_nrs.value:
        opioid_order(b)
    if not withheld:
        age, window = e.onset_days_before_enrollment, r.calcitonin_max_fracture_age_days.value
        b.act("start_calcitonin", "start_calcitonin", 0,
              f"Fracture {age} day(s) old <= {window:g}-day window: calcitonin for 4 weeks gives "
              "clinically important acute pain reduction; may cause mild dizziness. Short-term use "
              "only: EMA restricts calcitonin to short-term use and the FDA label warns of a "
              "malignancy signal; hard stop on day "
              f"{r.calcitonin_stop_day.value:g}.",
              dose="200 IU daily", route="nasal spray or suppository", stop_day=r.calcitonin_stop_day.value)
    else:
        b.note("calcitonin_not_started", 0, f"Calcitonin not started: {withheld}.",
               r.calcitonin_max_fracture_age_days.cite() if "window" in withheld
               else b.defn.cite("start_calcitonin"))
    b.act("advise_early_mobilization", "advise_early_mobilization", 0,
          "Limited bed rest and early mobilization as tolerated avoid deconditioning, bone loss "
          "and DVT.")
    b.act("offer_brace", "offer_brace", 0,
          f"{e.fracture_level} fracture, Genant grade {grade}: a thoracolumbar brace may give "
          "symptomatic relief (evidence inconclusive).", genant_grade=grade)
    b.act("prescribe_calcium_vitamin_d", "prescribe_calcium_vitamin_d", 0,
          f"{sentence(fracture)} fracture: calcium and vitamin D supplementation.")
    b.act("prescribe_bisphosphonate", "prescribe_bisphosphonate", 0,
          f"{sentence(fracture)} fragility fracture: a bisphosphonate (ibandronate) prevents further "
          "fractures.", drug="ibandronate")
    b.act("order_dxa", "order_dxa", 0, "Osteoporosis management: bone density evaluation (DXA).")
    _enrollment_mri(b)


def _enrollment_mri(b: Builder) -> None:
    e = b.facts.enrollment
    urgent = [f for f in e.red_flags if f in b.defn.urgent_mri_red_flags]
    pathologic = [f for f in urgent if f != "neuro_deficit"]
    if pathologic:
        why = (f"Red flag(s) {', '.join(pathologic)}: urgent MRI to rule out a pathologic fracture"
               + (" and cord or root compromise (neurological deficit)" if "neuro_deficit" in urgent else "") + "; "
               + ("PT and any augmentation referral wait for an MRI result saying osteoporotic."
                  if b.safety else "any augmentation referral is held until the MRI says osteoporotic."))
    elif urgent:
        why = ("Neurological deficit at enrollment: urgent MRI (rule out a pathologic fracture, cord or root "
               "compromise).")
    else:
        why = "MRI is most useful to tell an osteoporotic from a pathologic fracture (malignancy, infection)."
    b.act("order_mri", "order_mri", 0, why + imaging_text(b, "order_mri", e.fracture_level),
          priority="urgent" if urgent else "routine", red_flags=urgent,
          level=e.fracture_level)


# --- Schedule ------------------------------------------------------------------------------

def _scheduled_days(b: Builder) -> float:
    s = b.defn.schedules
    return b.next_instant(*s.radiograph_days.days, *s.screening_days.days)


@step(until=_scheduled_days, others=False)  # reads others' flare screenings only once due
def _schedule(b: Builder) -> None:
    radiographs = b.defn.schedules.radiograph_days
    due = [d for d in radiographs.days if b.reached(d)]
    if due:
        ordered = _radiographs_ordered(b)
        due = [d for d in due if d not in ordered]
    if due and b.revision >= 5 and any(b.at_instant(d) for d in radiographs.days):
        due = []  # a pause ended at a scheduled radiograph's instant: all of them, in one order, at its alarm
    # One task per need (vcf-1.2): radiographs that fall due together (after a pause) are one order.
    for group in ([due] if b.safety and due else [[d] for d in due]):
        weeks = " and ".join(f"{d // 7}" for d in group)
        b.act(f"order_radiograph:day-{'+'.join(str(d) for d in group)}", "order_radiograph", b.now,
              f"Scheduled follow-up radiograph, week {weeks} (day {', '.join(str(d) for d in group)})"
              + (" — due together after a pause: one order" if len(group) > 1 else "")
              + ": fracture healing, vertebral height, progressive deformity."
              + imaging_text(b, "order_radiograph", b.facts.enrollment.fracture_level),
              basis=(radiographs,), week=group[-1] // 7, scheduled_day=group[-1],
              level=b.facts.enrollment.fracture_level,
              **({"scheduled_days": group} if len(group) > 1 else {}))
    screenings = b.defn.schedules.screening_days
    for d in screenings.days:
        if not b.reached(d) or b.done(f"order_adjacent_fracture_screening:day-{d}:skipped"):
            continue  # not due yet, or skipped once and for all
        recent = _recent_screening(b, d)
        if recent is not None:
            assert b.defn.safety is not None
            rule = b.defn.safety.rules.screening_skip_after_flare_days
            what, day, together = recent
            b.note(f"order_adjacent_fracture_screening:day-{d}:skipped", b.now,
                   f"Scheduled adjacent-fracture screening (day {d}) skipped: {what} was ordered on day {day:g}, "
                   + ("due with it after the pause: one screening for both." if together else
                      f"within {rule.value:g} days."), rule.cite())
            continue
        b.act(f"order_adjacent_fracture_screening:day-{d}", "order_adjacent_fracture_screening",
              b.now, f"Scheduled screening for adjacent-level fractures at day {d} "
              f"(~{round(d / 30.4)} months): risk is raised after one VCF."
              + imaging_text(b, "order_adjacent_fracture_screening", b.facts.enrollment.fracture_level),
              basis=(screenings,), trigger="schedule", scheduled_day=d, level=b.facts.enrollment.fracture_level)


def _radiographs_ordered(b: Builder) -> set[int]:
    """Scheduled days whose radiograph was ordered (one order may cover several days)."""
    return radiograph_days_ordered([*b.facts.taken, *(a.id for a in b.decision.actions)])


def _steps_not_taken(b: Builder) -> list[dict[str, object]]:
    """Scheduled steps that came due and were never taken (a pause held them, or the review waits for
    its evidence): what a hand-over names beside the open orders."""
    schedules, review_day = b.defn.schedules, b.defn.rules.review_day.value
    ordered = _radiographs_ordered(b)
    steps: list[dict[str, object]] = [{"step": "order_radiograph", "scheduled_day": d}
                                      for d in schedules.radiograph_days.days if b.reached(d) and d not in ordered]
    if b.reached(review_day) and not any(b.done(i) for i in (f"{REVIEW}:done", f"{REVIEW}:lapsed",
                                                             "refer_vertebral_augmentation")):
        steps.append({"step": REVIEW, "scheduled_day": review_day})
    screening = "order_adjacent_fracture_screening:day-{}"
    steps += [{"step": "order_adjacent_fracture_screening", "scheduled_day": d} for d in schedules.screening_days.days
              if b.reached(d) and not b.done(screening.format(d)) and not b.done(screening.format(d) + ":skipped")]
    return steps


def _recent_screening(b: Builder, scheduled_day: int) -> tuple[str, float, bool] | None:
    """A screening ordered within the skip window before a scheduled one is ordered (vcf-1.2), as
    (what it was, its day, whether both fell due together): a flare-triggered one — and from
    revision 5 the other scheduled one, as when both fall due together after a pause (revisions 5 to
    8: within the skip window; from revision 9 only within a day, as safety rule 12 skips a
    scheduled screening after a flare's alone: a day-182 screening a pause held until day 320 does
    not take the place of the 12-month one). On schedule a screening is ordered on its day (its
    alarm rings a second later); after a pause, on resume — so one ordered during the pause counts."""
    prefix = "order_adjacent_fracture_screening:"
    if b.defn.safety is None or b.done(f"{prefix}day-{scheduled_day}"):
        return None
    # From revision 8 the window's last day counts when the pathway resumes on it: the workflow decides a
    # resume an instant after it was observed.
    window = b.defn.safety.rules.screening_skip_after_flare_days.value + (SAME_INSTANT if b.revision >= 8 else 0)
    ordered_on = scheduled_day if b.now - scheduled_day <= GRACE else b.now
    # A flare reported on the scheduled day is ordered in this same decision, before the schedule is read.
    ordered = [*b.facts.taken.items(), *(((a.id, a.day) for a in b.decision.actions) if b.revision >= 2 else ())]
    recent = [(day, action_id) for action_id, day in ordered
              if action_id.startswith(f"{prefix}flare:") and 0 <= ordered_on - day <= window]
    if b.revision >= 5:
        together = 1.0 if b.revision >= 9 else window  # both due at one resume: ordered in one decision
        recent += [(day, action_id) for action_id, day in ordered
                   if action_id.startswith(f"{prefix}day-") and 0 <= ordered_on - day <= together]
    if not recent:
        return None
    day, action_id = max(recent)
    flare = action_id.startswith(f"{prefix}flare:")
    return ("a flare-triggered screening" if flare else
            f"the day-{action_id.removeprefix(prefix + 'day-')} screening"), day, not flare and b.revision >= 9


def _gap_checks(b: Builder) -> float:
    r, since = b.defn.rules, gap_day(b.facts, b.revision)[1]
    return min(b.next_instant(r.completion_day.value), more_than_from(b.now, since, r.outreach_after_days.value),
               more_than_from(b.now, since, r.escalate_after_days.value))


@step(PainEvent, ClinicianEvent, until=_gap_checks, others=False)
def _follow_up_gaps(b: Builder) -> None:
    r = b.defn.rules
    if b.reached(r.completion_day.value):
        return
    since, start = gap_day(b.facts, b.revision)
    gaps: tuple[tuple[ActionKind, Rule], ...] = (("outreach_missed_follow_up", r.outreach_after_days),
                                                  ("escalate_lost_to_follow_up", r.escalate_after_days))
    for kind, rule in gaps:
        if more_than(b.now - start, rule.value):
            last_report = latest_pain(b.facts)[0]
            contact = (f"No pain report since day {since:g}" if since == last_report else
                       f"No pain report since the pathway resumed on day {since:g} (last report day {last_report:g})")
            if start > since:
                contact += f" ({start - since:g} days paused not counted)"
            b.act(f"{kind}:{since:g}", kind, b.now, f"{contact}: more than {rule.value:g} days.",
                  basis=(rule,), last_contact_day=round(since, 3))


def _completed(defn: PathwayDefinition, facts: PatientFacts, b: Builder) -> bool:
    if not b.reached(defn.rules.completion_day.value):
        return False
    done = set(facts.taken) | set(facts.noted) | {a.id for a in b.decision.actions} | {n.id for n in b.decision.notes}
    screening = "order_adjacent_fracture_screening:day-{}"
    return all({screening.format(d), screening.format(d) + ":skipped"} & done
               for d in defn.schedules.screening_days.days)


# --- Checks on incoming events, the clock, and status views -----------------------------------

def next_due(defn: PathwayDefinition, facts: PatientFacts, now: float, revision: int = REVISION) -> list[Due]:
    """Future instants at which something may come due (the pathway's named timers); from revision 4
    also one ``now`` is at, since a step is due only once its instant has passed (:meth:`Builder.reached`)."""
    dues = _dues(defn, facts, revision)
    if revision >= 4:
        return dues[bisect_left(dues, now - SAME_INSTANT, key=_DAY):]
    return dues[bisect_right(dues, now, key=_DAY):]


def _dues(defn: PathwayDefinition, facts: PatientFacts, revision: int) -> list[Due]:
    """Every instant the facts set a timer for, past ones included, in order."""
    # A pain report moves the follow-up checks alone: the other timers are kept as a view of what
    # they read, and joined in the same order as before sorting (ties keep that order).
    first, outreach_days, escalate_days, then = facts.view(
        "dues", lambda f: _kept_dues(defn, f), under=defn, of_actions=True, reads=(MobilityEvent, ClinicianEvent))
    start = gap_day(facts, revision)[1]
    return sorted([*first, Due(check_after(start, outreach_days), "missed follow-up check"),
                   Due(check_after(start, escalate_days), "lost-to-follow-up check"), *then], key=_DAY)


def _kept_dues(defn: PathwayDefinition, facts: PatientFacts) -> tuple[list[Due], float, float, list[Due]]:
    """The timers before the follow-up checks, the checks' limits, and the timers after them."""
    r = defn.rules
    return (_schedule_dues(defn, facts), r.outreach_after_days.value, r.escalate_after_days.value,
            _watch_dues(defn, facts))


def _schedule_dues(defn: PathwayDefinition, facts: PatientFacts) -> list[Due]:
    """The calcitonin stop while it runs, then the timers every patient has."""
    dues: list[Due] = []
    if "start_calcitonin" in facts.taken and "stop_calcitonin" not in facts.taken:
        dues.append(Due(defn.rules.calcitonin_stop_day.value, "calcitonin stop"))
    return dues + derived(defn, "scheduled_dues", _scheduled_dues)


def _watch_dues(defn: PathwayDefinition, facts: PatientFacts) -> list[Due]:
    """A bed-bound spell's limit, then the safety rules' timers."""
    dues: list[Due] = []
    for start, end in bed_bound_spells(facts):
        if end is None:
            dues.append(Due(check_after(start, defn.rules.immobilization_max_days.value),
                            "prolonged immobilization check"))
    if defn.safety is not None:
        dues += _safety_dues(defn, facts)
    return dues


_DAY = attrgetter("day")


def _scheduled_dues(defn: PathwayDefinition) -> list[Due]:
    """The timers every patient has: radiographs, the review, screenings, completion."""
    r = defn.rules
    return [*(Due(d, f"radiograph week {d // 7}") for d in defn.schedules.radiograph_days.days),
            Due(r.review_day.value, "12-week review"),
            *(Due(d, f"adjacent-fracture screening day {d}") for d in defn.schedules.screening_days.days),
            Due(r.completion_day.value, "pathway completion")]


def _safety_dues(defn: PathwayDefinition, facts: PatientFacts) -> list[Due]:
    """The timers the safety rules add: opioid review, the offer's expiry, a held review's limit."""
    assert defn.safety is not None
    s = defn.safety.rules
    dues = []
    if "prescribe_opioid_short_course" in facts.taken:
        dues.append(Due(s.opioid_review_day.value, "opioid review"))
    if "offer_nerve_block" in facts.taken and not decisions_of(facts, "confirm_nerve_block"):
        dues.append(Due(check_after(0, defn.rules.nerve_block_until_day.value), "nerve-block offer expiry"))
    if review_held(facts):
        dues.append(Due(check_after(0, s.review_hold_until_day.value), "held review limit"))
    return dues


def next_scheduled_step(defn: PathwayDefinition, now: float) -> float | None:
    """Day of the next scheduled review step (radiograph, review, screening)."""
    days = [*defn.schedules.radiograph_days.days, defn.rules.review_day.value, *defn.schedules.screening_days.days]
    future = [d for d in days if d > now]
    return min(future) if future else None


def phase(defn: PathwayDefinition, status: PathwayStatus, now: float) -> str:
    """The clinical phase: acute, conservative, follow_up — or how the pathway ended."""
    if status != "running":
        return status
    if now < defn.rules.acute_phase_end_day.value:
        return "acute"
    if now < defn.rules.review_day.value:
        return "conservative"
    return "follow_up"


def escalation_state(facts: PatientFacts, revision: int = REVISION) -> str:
    """Operational flag for the care team: ``urgent_referral`` (a neurological deficit open),
    ``lost_to_follow_up``, ``outreach``, ``awaiting_confirmation`` (a nerve-block offer standing), or
    ``none`` (the follow-up gap as the decisions' ``revision`` names it): what was decided so far."""
    if neuro_deficit_open(facts):
        return "urgent_referral"
    since = gap_day(facts, revision)[0]
    if f"escalate_lost_to_follow_up:{since:g}" in facts.taken:
        return "lost_to_follow_up"
    if f"outreach_missed_follow_up:{since:g}" in facts.taken:
        return "outreach"
    if "offer_nerve_block" in facts.taken and not decisions_of(facts, "confirm_nerve_block") \
            and "offer_nerve_block:expired" not in facts.noted:
        return "awaiting_confirmation"
    return "none"
