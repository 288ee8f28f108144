"""The guideline's decisions: patient facts and the pathway clock in, actions out.

Pure and deterministic — no Temporal, no I/O — so a clinician can read it and the tests can
probe both sides of every threshold. Every action carries the facts and the threshold that
made it fire (``rationale``) and the guideline line behind it (``citation``). Each action has a
stable ``id`` per cause: deciding again over the same facts never proposes it twice.

Conventions:
- ``now`` and every ``day`` count days from enrollment (day 0).
- "More than N days" is strict: a report landing exactly at N days is in time.
- A clinician's *pause* holds the schedule (radiographs, review, screenings, follow-up
  outreach); responses to new clinical information still fire, and held steps fire on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pathway.contract import Action, DxaEvent, MriEvent, PathwayStatus, RadiographEvent
from pathway.facts import (
    PatientFacts,
    bed_bound_spells,
    check_after,
    decisions_of,
    gap_reference_day,
    genant_grade,
    latest_height_loss,
    latest_pain,
    more_than,
    mri_results,
    neuro_deficit_open,
    neuro_episodes,
    pain_flares,
    pain_reports,
    pause_state,
    progression,
    pulmonary_dysfunction,
)
from pathway.guideline import PathwayDefinition

# Pending work cancelled when the fracture proves pathologic.
CANCELLED_ON_EXIT = (
    "order_radiograph",
    "refer_vertebral_augmentation",
    "refer_physical_therapy",
    "offer_nerve_block",
    "order_adjacent_fracture_screening",
)
REVIEW = "twelve_week_review"


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


@dataclass(frozen=True)
class Due:
    """A future instant at which the decisions must be asked again (a named timer)."""

    day: float
    label: str


class _Builder:
    """Collects new actions and notes, skipping those already taken or noted."""

    def __init__(self, defn: PathwayDefinition, facts: PatientFacts, now: float):
        self.defn, self.facts, self.now = defn, facts, now
        self.decision = Decision()
        self._ids = set(facts.taken) | set(facts.noted)

    def done(self, action_id: str) -> bool:
        return action_id in self._ids

    def act(self, action_id: str, kind: str, day: float, rationale: str, **details) -> None:
        if action_id in self._ids:
            return
        self._ids.add(action_id)
        self.decision.actions.append(
            Action(
                id=action_id,
                day=round(day, 3),
                kind=kind,  # type: ignore[arg-type]
                rationale=rationale,
                citation=self.defn.cite(kind),
                details=details,
            )
        )

    def note(self, note_id: str, day: float, text: str, citation: str = "") -> None:
        if note_id in self._ids:
            return
        self._ids.add(note_id)
        self.decision.notes.append(Note(note_id, round(day, 3), text, citation))


def decide(defn: PathwayDefinition, facts: PatientFacts, now: float) -> Decision:
    """Everything the guideline calls for at pathway day ``now`` that has not been done yet."""
    b = _Builder(defn, facts, now)
    _enrollment(b)
    _urgent_safety(b)
    if _pathologic_fracture(b):
        b.decision.status = "exited"
        return b.decision
    withdrawals = decisions_of(facts, "withdraw")
    if withdrawals:
        _stop_calcitonin(b, withdrawals[0][0], "the patient was withdrawn from the pathway")
        b.decision.status = "withdrawn"
        return b.decision
    _calcitonin_stop(b)
    _pain_responses(b)
    _radiograph_findings(b)
    _immobilization(b)
    _results(b)
    if not pause_state(facts).paused:
        _schedule(b)
        _twelve_week_review(b)
        _follow_up_gaps(b)
    if _completed(defn, facts, b):
        b.decision.status = "completed"
    return b.decision


# --- Enrollment ---------------------------------------------------------------------------

def _enrollment(b: _Builder) -> None:
    e, r = b.facts.enrollment, b.defn.rules
    grade = genant_grade(b.defn, e.height_loss_pct)
    age, window = e.onset_days_before_enrollment, r.calcitonin_max_fracture_age_days.value
    calcitonin = age <= window
    b.act("prescribe_first_line_analgesia", "prescribe_first_line_analgesia", 0,
          f"Enrollment with an osteoporotic {e.fracture_level} fracture, pain NRS {e.pain_nrs}: "
          "acetaminophen and an NSAID are first-line."
          + ("" if calcitonin else f" Calcitonin not started: fracture {age} days old > {window:g}-day window."),
          drugs=["acetaminophen", "NSAID (ibuprofen or naproxen)"])
    if e.pain_nrs >= r.severe_pain_nrs.value:
        b.act("prescribe_opioid_short_course", "prescribe_opioid_short_course", 0,
              f"Pain NRS {e.pain_nrs} at enrollment >= severe-pain threshold "
              f"{r.severe_pain_nrs.value:g}: limited opioid use for severe pain.",
              duration="short, limited course", severe_pain_threshold=r.severe_pain_nrs.value)
    if calcitonin:
        b.act("start_calcitonin", "start_calcitonin", 0,
              f"Fracture {age} day(s) old <= {window:g}-day window: calcitonin for 4 weeks gives "
              "clinically important acute pain reduction; may cause mild dizziness.",
              dose="200 IU daily", route="nasal spray or suppository",
              stop_day=r.calcitonin_stop_day.value)
    else:
        b.note("calcitonin_not_started", 0,
               f"Calcitonin not started: fracture {age} days old > {window:g}-day window "
               "(benefit is for acute pain only; EMA restricts to short-term use).",
               r.calcitonin_max_fracture_age_days.cite())
    b.act("advise_early_mobilization", "advise_early_mobilization", 0,
          "Limited bed rest and early mobilization as tolerated avoid deconditioning, bone loss "
          "and DVT.")
    b.act("offer_brace", "offer_brace", 0,
          f"{e.fracture_level} fracture, Genant grade {grade}: a thoracolumbar brace may give "
          "symptomatic relief (evidence inconclusive).", genant_grade=grade)
    b.act("prescribe_calcium_vitamin_d", "prescribe_calcium_vitamin_d", 0,
          "Osteoporotic fracture: calcium and vitamin D supplementation.")
    b.act("prescribe_bisphosphonate", "prescribe_bisphosphonate", 0,
          "Osteoporotic fragility fracture: a bisphosphonate (ibandronate) prevents further "
          "fractures.", drug="ibandronate")
    b.act("order_dxa", "order_dxa", 0, "Osteoporosis management: bone density evaluation (DXA).")
    # The red flags that suggest a pathologic fracture; neuro_deficit goes to spine surgery instead.
    urgent = [f for f in e.red_flags if f in b.defn.urgent_mri_red_flags]
    b.act("order_mri", "order_mri", 0,
          (f"Red flag(s) {', '.join(urgent)}: urgent MRI to rule out a pathologic fracture; any "
           "augmentation referral is held until the MRI says osteoporotic.") if urgent else
          "MRI is most useful to tell an osteoporotic from a pathologic fracture (malignancy, infection).",
          priority="urgent" if urgent else "routine", red_flags=urgent, level=e.fracture_level)


def _urgent_safety(b: _Builder) -> None:
    for start in neuro_episodes(b.facts):
        cause = "neuro_deficit red flag at enrollment" if start == 0 and \
            "neuro_deficit" in b.facts.enrollment.red_flags else f"neurological deficit reported on day {start:g}"
        b.act(f"refer_urgent_spine_surgery:{start:g}", "refer_urgent_spine_surgery", start,
              f"{cause.capitalize()}: urgent spine-surgery referral; the pathway goes on.",
              priority="urgent")


def _pathologic_fracture(b: _Builder) -> bool:
    for day, etiology in mri_results(b.facts):
        if etiology in ("malignant", "infection"):
            specialty = "oncology" if etiology == "malignant" else "infectious_disease"
            _stop_calcitonin(b, day, "pathologic fracture")
            b.act("refer_pathologic_fracture_workup", "refer_pathologic_fracture_workup", day,
                  f"MRI on day {day:g} shows a {etiology} (pathologic) fracture: leave the "
                  "osteoporotic pathway, cancel pending radiographs, referrals and screening.",
                  priority="urgent", etiology=etiology,
                  refer_to=[specialty, "spine_surgery"], cancels=list(CANCELLED_ON_EXIT))
            return True
    return False


# --- Medication ----------------------------------------------------------------------------

def _stop_calcitonin(b: _Builder, day: float, why: str) -> None:
    if "start_calcitonin" in b.facts.taken or any(a.id == "start_calcitonin" for a in b.decision.actions):
        b.act("stop_calcitonin", "stop_calcitonin", day,
              f"Calcitonin stopped on day {day:g}: {why} (short-term use only).", reason=why)


def _calcitonin_stop(b: _Builder) -> None:
    stop = b.defn.rules.calcitonin_stop_day.value
    if b.now >= stop:
        _stop_calcitonin(b, b.now, f"{stop:g}-day course complete (hard stop)")


# --- Responses to new information ------------------------------------------------------------

def _pain_responses(b: _Builder) -> None:
    r = b.defn.rules
    reports = pain_reports(b.facts)[1:]
    lo, hi = r.nerve_block_from_day.value, r.nerve_block_until_day.value
    for day, nrs in reports:
        if lo <= day <= hi and nrs >= r.severe_pain_nrs.value:
            b.act("offer_nerve_block", "offer_nerve_block", day,
                  f"Pain NRS {nrs} on day {day:g} >= {r.severe_pain_nrs.value:g} despite "
                  f"first-line analgesia, within days {lo:g}–{hi:g}: a "
                  f"{b.facts.enrollment.fracture_level} nerve-root block may be considered "
                  "(short-term relief, up to ~2 weeks). Needs clinician confirmation.",
                  needs_confirmation=True, level=b.facts.enrollment.fracture_level)
            break
    for day, nrs in reports:
        if day >= r.physical_therapy_from_day.value and nrs <= r.physical_therapy_pain_nrs.value:
            b.act("refer_physical_therapy", "refer_physical_therapy", day,
                  f"Pain NRS {nrs} on day {day:g} <= {r.physical_therapy_pain_nrs.value:g} "
                  f"(from day {r.physical_therapy_from_day.value:g}): acute pain has subsided; "
                  "start core strengthening and posture work.", focus=["core strengthening", "posture"])
            break
    for day, nrs, lowest in pain_flares(b.defn, b.facts):
        b.act(f"order_adjacent_fracture_screening:flare:{day:g}", "order_adjacent_fracture_screening",
              day, f"Pain flare: NRS {nrs} on day {day:g} is >= {r.flare_rise_nrs.value:g} above the "
              f"lowest score {lowest} (<= {r.flare_baseline_max_nrs.value:g}): screen for a new "
              "adjacent-level fracture.", trigger="pain_flare")


def _radiograph_findings(b: _Builder) -> None:
    found = progression(b.defn, b.facts)
    if found:
        b.act("flag_progressive_deformity", "flag_progressive_deformity", found.day,
              f"Radiograph on day {found.day:g}: {found.reason}. Clinician review; counts as "
              "spinal deformity at the 12-week review.")
    level = b.facts.enrollment.fracture_level
    for day, image in b.facts.of(RadiographEvent):
        new = image.new_fracture_level
        if new and new != level:
            b.act(f"flag_new_vertebral_fracture:{new}", "flag_new_vertebral_fracture", day,
                  f"Radiograph on day {day:g} shows a new fracture at {new} (enrolled: {level}).",
                  level=new)
            b.act(f"order_mri:{new}", "order_mri", day,
                  f"New fracture level {new} on day {day:g}: MRI to characterise it.",
                  priority="routine", level=new)


def _immobilization(b: _Builder) -> None:
    limit = b.defn.rules.immobilization_max_days.value
    for start, end in bed_bound_spells(b.facts):
        if end is None and more_than(b.now - start, limit):
            b.act(f"alert_prolonged_immobilization:{start:g}", "alert_prolonged_immobilization",
                  b.now, f"Bed-bound since day {start:g}: more than {limit:g} days. Prolonged "
                  "immobilization risks deconditioning, bone loss and DVT.", bed_bound_since=start)


def _results(b: _Builder) -> None:
    for day, etiology in mri_results(b.facts):
        b.note(f"mri:{day:g}:{etiology}", day,
               "MRI: osteoporotic fracture confirmed." if etiology == "osteoporotic" else
               "MRI indeterminate: clinician review; pathologic fracture not ruled out.",
               b.defn.actions["order_mri"].cite())
    limit = b.defn.rules.osteoporosis_t_score.value
    for day, dxa in b.facts.of(DxaEvent):
        t = dxa.t_score
        b.note(f"dxa:{day:g}", day,
               f"DXA T-score {t:g} <= {limit:g}: osteoporosis confirmed." if t <= limit else
               f"DXA T-score {t:g} > {limit:g}; treatment stays indicated by the fragility fracture.",
               b.defn.rules.osteoporosis_t_score.cite())
    for day, _ in decisions_of(b.facts, "confirm_nerve_block"):
        b.note(f"nerve_block_confirmed:{day:g}", day, "Nerve-root block confirmed by a clinician.")


# --- Schedule ------------------------------------------------------------------------------

def _schedule(b: _Builder) -> None:
    radiographs = b.defn.schedules.radiograph_days
    for d in radiographs.days:
        if b.now >= d:
            b.act(f"order_radiograph:day-{d}", "order_radiograph", b.now,
                  f"Scheduled follow-up radiograph, week {d // 7} (day {d}): fracture healing, "
                  "vertebral height, progressive deformity.", week=d // 7, scheduled_day=d)
    for d in b.defn.schedules.screening_days.days:
        if b.now >= d:
            b.act(f"order_adjacent_fracture_screening:day-{d}", "order_adjacent_fracture_screening",
                  b.now, f"Scheduled screening for adjacent-level fractures at day {d} "
                  f"(~{round(d / 30.4)} months): risk is raised after one VCF.",
                  trigger="schedule", scheduled_day=d)


def review_criteria(defn: PathwayDefinition, facts: PatientFacts) -> tuple[list[str], list[str]]:
    """The augmentation criteria met now, and the facts behind each."""
    r = defn.rules
    criteria, facts_text = [], []
    day, nrs = latest_pain(facts)
    if nrs >= r.persistent_pain_nrs.value:
        criteria.append("persistent_pain")
        facts_text.append(f"latest pain NRS {nrs} (day {day:g}) >= {r.persistent_pain_nrs.value:g}")
    found = progression(defn, facts)
    if found:
        criteria.append("spinal_deformity")
        facts_text.append(f"progressive deformity ({found.reason})")
    if pulmonary_dysfunction(facts):
        criteria.append("pulmonary_dysfunction")
        facts_text.append("pulmonary dysfunction reported")
    return criteria, facts_text


def _twelve_week_review(b: _Builder) -> None:
    r = b.defn.rules
    review_day = r.review_day.value
    if b.now < review_day or "refer_vertebral_augmentation" in b.facts.taken:
        return
    reviewed = f"{REVIEW}:done" in b.facts.noted
    held = f"{REVIEW}:held" in b.facts.noted
    if reviewed and not held:
        return
    criteria, why = review_criteria(b.defn, b.facts)
    day, nrs = latest_pain(b.facts)
    b.note(f"{REVIEW}:done", b.now, f"12-week review (day {review_day:g}): " + (
        "; ".join(why) if why else
        f"no criterion met (latest pain NRS {nrs}"
        + (f" <= {r.resolved_pain_nrs.value:g}: resolved" if nrs <= r.resolved_pain_nrs.value else "")
        + "); continue conservative care."), r.review_day.cite())
    if not criteria:
        return
    if decisions_of(b.facts, "decline_augmentation"):
        b.note(f"{REVIEW}:declined", b.now, "Criteria met but augmentation declined by a clinician.")
        return
    urgent = [f for f in b.facts.enrollment.red_flags if f in b.defn.urgent_mri_red_flags]
    if urgent and not any(e == "osteoporotic" for _, e in mri_results(b.facts)):
        b.note(f"{REVIEW}:held", b.now, f"Referral held: red flag(s) {', '.join(urgent)} and no MRI "
               "result saying osteoporotic yet.", b.defn.actions["order_mri"].cite())
        return
    grade = genant_grade(b.defn, latest_height_loss(b.facts))
    kyphoplasty = grade >= r.kyphoplasty_min_genant_grade.value or "spinal_deformity" in criteria
    b.act("refer_vertebral_augmentation", "refer_vertebral_augmentation", b.now,
          f"12-week review: {'; '.join(why)}. Referral for evaluation for vertebral augmentation; "
          f"{'balloon kyphoplasty' if kyphoplasty else 'vertebroplasty'} suggested (Genant grade "
          f"{grade}). Evidence: VERTOS II enrolled acute fractures (53% improved on their own); "
          "VERTOS IV (sham-controlled) found no pain difference at 12 months; AAOS 2010 advises "
          "against vertebroplasty, kyphoplasty weak. A referral for evaluation, not an order.",
          criteria=criteria, suggested_procedure="balloon_kyphoplasty" if kyphoplasty else "vertebroplasty",
          genant_grade=grade, latest_pain_nrs=nrs)


def _follow_up_gaps(b: _Builder) -> None:
    r = b.defn.rules
    if b.now >= r.completion_day.value:
        return
    since = gap_reference_day(b.facts)
    last_report = latest_pain(b.facts)[0]
    contact = (f"no pain report since day {since:g}" if since == last_report else
               f"no pain report since the pathway resumed on day {since:g} (last report day {last_report:g})")
    for kind, limit in (("outreach_missed_follow_up", r.outreach_after_days.value),
                        ("escalate_lost_to_follow_up", r.escalate_after_days.value)):
        if more_than(b.now - since, limit):
            b.act(f"{kind}:{since:g}", kind, b.now, f"{contact[0].upper()}{contact[1:]}: more than {limit:g} days.",
                  last_contact_day=round(since, 3))


def _completed(defn: PathwayDefinition, facts: PatientFacts, b: _Builder) -> bool:
    if b.now < defn.rules.completion_day.value:
        return False
    done = set(facts.taken) | {a.id for a in b.decision.actions}
    return all(f"order_adjacent_fracture_screening:day-{d}" in done for d in defn.schedules.screening_days.days)


# --- Checks on incoming events, the clock, and status views -----------------------------------

def event_rejection(facts: PatientFacts, event: object) -> str | None:
    """Why a well-formed event cannot be applied now, or None to accept it."""
    decision = getattr(event, "decision", None)
    paused = pause_state(facts).paused
    if decision == "pause" and paused:
        return "decision: the pathway is already paused"
    if decision == "resume" and not paused:
        return "decision: the pathway is not paused"
    if decision == "confirm_nerve_block":
        if "offer_nerve_block" not in facts.taken:
            return "decision: no nerve-block offer to confirm"
        if decisions_of(facts, "confirm_nerve_block"):
            return "decision: the nerve block is already confirmed"
    if decision == "decline_augmentation" and decisions_of(facts, "decline_augmentation"):
        return "decision: augmentation is already declined"
    if isinstance(event, MriEvent) and any(e in ("malignant", "infection") for _, e in mri_results(facts)):
        return "etiology: the pathway already exited on a pathologic MRI"
    return None


def next_due(defn: PathwayDefinition, facts: PatientFacts, now: float) -> list[Due]:
    """Future instants at which something may come due (the pathway's named timers)."""
    r = defn.rules
    dues: list[Due] = []
    if "start_calcitonin" in facts.taken and "stop_calcitonin" not in facts.taken:
        dues.append(Due(r.calcitonin_stop_day.value, "calcitonin stop"))
    for d in defn.schedules.radiograph_days.days:
        dues.append(Due(d, f"radiograph week {d // 7}"))
    dues.append(Due(r.review_day.value, "12-week review"))
    for d in defn.schedules.screening_days.days:
        dues.append(Due(d, f"adjacent-fracture screening day {d}"))
    dues.append(Due(r.completion_day.value, "pathway completion"))
    since = gap_reference_day(facts)
    dues.append(Due(check_after(since, r.outreach_after_days.value), "missed follow-up check"))
    dues.append(Due(check_after(since, r.escalate_after_days.value), "lost-to-follow-up check"))
    for start, end in bed_bound_spells(facts):
        if end is None:
            dues.append(Due(check_after(start, r.immobilization_max_days.value), "prolonged immobilization check"))
    return sorted((d for d in dues if d.day > now), key=lambda d: d.day)


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


def escalation_state(facts: PatientFacts, now: float) -> str:
    """Operational flag for the care team: urgent, lost_to_follow_up, outreach, or none."""
    if neuro_deficit_open(facts):
        return "urgent_referral"
    since = gap_reference_day(facts)
    if f"escalate_lost_to_follow_up:{since:g}" in facts.taken:
        return "lost_to_follow_up"
    if f"outreach_missed_follow_up:{since:g}" in facts.taken:
        return "outreach"
    if "offer_nerve_block" in facts.taken and not decisions_of(facts, "confirm_nerve_block"):
        return "awaiting_confirmation"
    return "none"
