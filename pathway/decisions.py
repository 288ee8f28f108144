"""The guideline's decisions: patient facts and the pathway clock in, actions out.

Pure and deterministic — no Temporal, no I/O — so a clinician can read it and the tests can
probe both sides of every threshold. Every action carries the facts and the threshold that
made it fire (``rationale``) and the guideline line behind it (``citation``, which says
"(verify)" where a rule it rests on is a local default). Each action has a stable ``id`` per
cause: deciding again over the same facts never proposes it twice.

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

from dataclasses import dataclass
from typing import Any, cast

from pathway.builder import Builder, Decision, Note
from pathway.contract import ActionKind, DxaEvent, PathwayStatus, RadiographEvent, SideEffectEvent
from pathway.facts import (
    GRACE,
    PatientFacts,
    bed_bound_spells,
    check_after,
    decisions_of,
    gap_reference_day,
    genant_grade,
    latest_pain,
    more_than,
    mri_results,
    neuro_cleared_day,
    neuro_deficit_open,
    neuro_episodes,
    osteoporotic_mri_day,
    pain_flares,
    pain_reports,
    pause_state,
    presumed,
    progression,
)
from pathway.guideline import PathwayDefinition, Rule
from pathway.results import RESULT_EVENT_FOR, open_orders
from pathway.review import REVIEW, review_criteria, review_held, twelve_week_review

__all__ = ["CANCELLED_ON_EXIT", "REVIEW", "Decision", "Due", "Note", "decide", "escalation_state",
           "next_due", "next_scheduled_step", "phase", "review_criteria"]

# Pending work cancelled when the fracture proves pathologic.
CANCELLED_ON_EXIT = (
    "order_radiograph",
    "refer_vertebral_augmentation",
    "refer_physical_therapy",
    "offer_nerve_block",
    "order_adjacent_fracture_screening",
)
# Medications a clinician reviews when the pathway exits on a pathologic fracture.
REVIEWED_ON_EXIT = ("prescribe_bisphosphonate", "prescribe_first_line_analgesia",
                    "prescribe_opioid_short_course", "prescribe_calcium_vitamin_d")


@dataclass(frozen=True)
class Due:
    """A future instant at which the decisions must be asked again (a named timer)."""

    day: float
    label: str


def decide(defn: PathwayDefinition, facts: PatientFacts, now: float) -> Decision:
    """Everything the guideline calls for at pathway day ``now`` that has not been done yet."""
    b = Builder(defn, facts, now)
    _enrollment(b)
    _urgent_safety(b)
    if _pathologic_fracture(b):
        b.decision.status = "exited"
        return b.decision
    withdrawals = decisions_of(facts, "withdraw")
    if withdrawals:
        _stop_calcitonin(b, withdrawals[0][0], "the patient was withdrawn from the pathway")
        _withdrawal_handover(b, withdrawals[0][0])
        b.decision.status = "withdrawn"
        return b.decision
    _calcitonin_stop(b)
    _opioid_review(b)
    _pain_responses(b)
    _side_effects(b)
    _radiograph_findings(b)
    _immobilization(b)
    _results(b)
    if not pause_state(facts).paused:
        _schedule(b)
        twelve_week_review(b)
        _follow_up_gaps(b)
    if _completed(defn, facts, b):
        b.decision.status = "completed"
    return b.decision


# --- Enrollment ---------------------------------------------------------------------------

def _enrollment(b: Builder) -> None:
    if b.done("prescribe_first_line_analgesia"):
        return  # every enrollment action comes with the first decision
    e, r = b.facts.enrollment, b.defn.rules
    grade = genant_grade(b.defn, e.height_loss_pct)
    fracture = presumed(b.facts)
    calcitonin_withheld = _calcitonin_withheld(b)
    b.act("prescribe_first_line_analgesia", "prescribe_first_line_analgesia", 0,
          f"Enrollment with a {fracture} {e.fracture_level} fracture, pain NRS {e.pain_nrs}: "
          "acetaminophen and an NSAID are first-line."
          + (f" Calcitonin not started: {calcitonin_withheld}." if calcitonin_withheld else ""),
          drugs=["acetaminophen", "NSAID (ibuprofen or naproxen)"])
    if e.pain_nrs >= r.severe_pain_nrs.value:
        _opioid_order(b)
    if not calcitonin_withheld:
        age, window = e.onset_days_before_enrollment, r.calcitonin_max_fracture_age_days.value
        b.act("start_calcitonin", "start_calcitonin", 0,
              f"Fracture {age} day(s) old <= {window:g}-day window: calcitonin for 4 weeks gives "
              "clinically important acute pain reduction; may cause mild dizziness. Short-term use "
              "only: EMA restricts calcitonin to short-term use and the FDA label warns of a "
              "malignancy signal; hard stop on day "
              f"{r.calcitonin_stop_day.value:g}.",
              dose="200 IU daily", route="nasal spray or suppository", stop_day=r.calcitonin_stop_day.value)
    else:
        b.note("calcitonin_not_started", 0, f"Calcitonin not started: {calcitonin_withheld}.",
               r.calcitonin_max_fracture_age_days.cite() if "window" in calcitonin_withheld
               else b.defn.cite("start_calcitonin"))
    b.act("advise_early_mobilization", "advise_early_mobilization", 0,
          "Limited bed rest and early mobilization as tolerated avoid deconditioning, bone loss "
          "and DVT.")
    b.act("offer_brace", "offer_brace", 0,
          f"{e.fracture_level} fracture, Genant grade {grade}: a thoracolumbar brace may give "
          "symptomatic relief (evidence inconclusive).", genant_grade=grade)
    b.act("prescribe_calcium_vitamin_d", "prescribe_calcium_vitamin_d", 0,
          f"{fracture.capitalize()} fracture: calcium and vitamin D supplementation.")
    b.act("prescribe_bisphosphonate", "prescribe_bisphosphonate", 0,
          f"{fracture.capitalize()} fragility fracture: a bisphosphonate (ibandronate) prevents further "
          "fractures.", drug="ibandronate")
    b.act("order_dxa", "order_dxa", 0, "Osteoporosis management: bone density evaluation (DXA).")
    _enrollment_mri(b)


def _calcitonin_withheld(b: Builder) -> str:
    """Why calcitonin is not started (empty if it is)."""
    e, r = b.facts.enrollment, b.defn.rules
    age, window = e.onset_days_before_enrollment, r.calcitonin_max_fracture_age_days.value
    if age > window:
        return (f"fracture {age} days old > {window:g}-day window (benefit is for acute pain only; "
                "EMA restricts to short-term use)")
    flags = [f for f in e.red_flags if b.defn.safety and f in b.defn.safety.calcitonin_withheld_red_flags]
    if flags:
        return (f"red flag {', '.join(flags)}: the FDA label warns of a malignancy signal with "
                "calcitonin; EMA restricts it to short-term use")
    return ""


def _opioid_order(b: Builder) -> None:
    e, r = b.facts.enrollment, b.defn.rules
    severe = (f"Pain NRS {e.pain_nrs} at enrollment >= severe-pain threshold {r.severe_pain_nrs.value:g}: "
              "limited opioid use for severe pain.")
    if b.defn.safety is None:
        b.act("prescribe_opioid_short_course", "prescribe_opioid_short_course", 0, severe,
              basis=(r.severe_pain_nrs,), duration="short, limited course",
              severe_pain_threshold=r.severe_pain_nrs.value)
        return
    s = b.defn.safety.rules
    review, stop = s.opioid_review_day.value, s.opioid_stop_by_day.value
    b.act("prescribe_opioid_short_course", "prescribe_opioid_short_course", 0,
          f"{severe} Opioid analgesic, short course: the clinician chooses agent and dose; reviewed on "
          f"day {review:g}, stopped by day {stop:g}; with a bowel regimen.",
          basis=(r.severe_pain_nrs, s.opioid_review_day, s.opioid_stop_by_day),
          agent="opioid analgesic (class-level order; clinician chooses agent and dose)",
          review_day=review, stop_by_day=stop,
          bowel_regimen="prescribe a stimulant laxative with a stool softener for the course",
          severe_pain_threshold=r.severe_pain_nrs.value)


def _enrollment_mri(b: Builder) -> None:
    e = b.facts.enrollment
    urgent = [f for f in e.red_flags if f in b.defn.urgent_mri_red_flags]
    pathologic = [f for f in urgent if f != "neuro_deficit"]
    if pathologic:
        why = (f"Red flag(s) {', '.join(pathologic)}: urgent MRI to rule out a pathologic fracture; "
               + ("PT and any augmentation referral wait for an MRI result saying osteoporotic."
                  if b.safety else "any augmentation referral is held until the MRI says osteoporotic."))
    elif urgent:
        why = ("Neurological deficit at enrollment: urgent MRI (rule out a pathologic fracture, cord or root "
               "compromise).")
    else:
        why = "MRI is most useful to tell an osteoporotic from a pathologic fracture (malignancy, infection)."
    b.act("order_mri", "order_mri", 0, why + _imaging(b, "order_mri", e.fracture_level),
          priority="urgent" if urgent else "routine", red_flags=urgent,
          level=e.fracture_level)


def _imaging(b: Builder, kind: ActionKind, level: str) -> str:
    """The region an imaging order names, as a sentence (empty where the version is not level-aware)."""
    title = b.defn.order_for(kind, level)[0]
    return f" Order: {title} ({level})." if b.defn.region(kind, level) else ""


def _urgent_safety(b: Builder) -> None:
    mri_pending = not mri_results(b.facts)
    for start in neuro_episodes(b.facts):
        at_enrollment = start == 0 and "neuro_deficit" in b.facts.enrollment.red_flags
        cause = ("Neuro_deficit red flag at enrollment" if at_enrollment
                 else f"Neurological deficit reported on day {start:g}")
        expedite = b.safety and mri_pending and not at_enrollment
        extra: dict[str, Any] = {"expedite_mri": True} if expedite else {}
        b.act(f"refer_urgent_spine_surgery:{start:g}", "refer_urgent_spine_surgery", start,
              f"{cause}: urgent spine-surgery referral; the pathway goes on."
              + (" Expedite the pending MRI: it is urgent now." if expedite else ""),
              priority="urgent", **extra)


def _pathologic_fracture(b: Builder) -> bool:
    for day, etiology in mri_results(b.facts):
        if etiology in ("malignant", "infection"):
            specialty = "oncology" if etiology == "malignant" else "infectious_disease"
            _stop_calcitonin(b, day, "pathologic fracture")
            b.act("refer_pathologic_fracture_workup", "refer_pathologic_fracture_workup", day,
                  f"MRI on day {day:g} shows a {etiology} (pathologic) fracture: leave the "
                  "osteoporotic pathway, cancel pending radiographs, referrals and screening.",
                  priority="urgent", etiology=etiology,
                  refer_to=[specialty, "spine_surgery"], cancels=list(CANCELLED_ON_EXIT))
            if b.safety:
                drugs = [k for k in REVIEWED_ON_EXIT if k in b.facts.taken]
                b.review("pathologic_exit_medications", "pathologic_exit_medications", day,
                         f"Pathologic ({etiology}) fracture on MRI, day {day:g}: review the bisphosphonate "
                         "and analgesics for the new diagnosis. Nothing is stopped automatically but calcitonin.",
                         medications=drugs)
            return True
    return False


def _withdrawal_handover(b: Builder, day: float) -> None:
    """Hand the open orders over to the care team; they stay open (the pathway cancels nothing)."""
    if not b.safety:
        return
    still_open = _open_orders(b)
    b.review("withdrawal_handover", "withdrawal_handover", day,
             f"Withdrawn from the pathway on day {day:g}: {len(still_open)} order(s) stay open for the care "
             "team, which now owns them (results after the end still fulfil them).",
             open_orders=still_open)


def _open_orders(b: Builder) -> list[dict[str, object]]:
    """The pathway's service and medication requests that no result or stop has closed, as it
    knows them (advice, flags and care-team tasks are not orders to hand over)."""
    unanswered = {o.action_id for o in open_orders(b.facts)}
    stopped = "stop_calcitonin" in b.facts.taken or any(a.kind == "stop_calcitonin" for a in b.decision.actions)
    rows = []
    for action_id, day in sorted(b.facts.taken.items(), key=lambda item: (item[1], item[0])):
        kind = action_id.split(":")[0]
        spec = b.defn.actions.get(cast(ActionKind, kind))
        if spec is None or spec.resource not in ("ServiceRequest", "MedicationRequest") or kind == "stop_calcitonin":
            continue
        if (kind in RESULT_EVENT_FOR and action_id not in unanswered) or (kind == "start_calcitonin" and stopped):
            continue
        rows.append({"id": action_id, "kind": kind, "day": day})
    return rows


# --- Medication ----------------------------------------------------------------------------

def _stop_calcitonin(b: Builder, day: float, why: str) -> None:
    if "start_calcitonin" in b.facts.taken or any(a.id == "start_calcitonin" for a in b.decision.actions):
        b.act("stop_calcitonin", "stop_calcitonin", day,
              f"Calcitonin stopped on day {day:g}: {why} (short-term use only).", reason=why)


def _calcitonin_stop(b: Builder) -> None:
    stop = b.defn.rules.calcitonin_stop_day.value
    if b.now >= stop:
        _stop_calcitonin(b, b.now, f"{stop:g}-day course complete (hard stop)")


def _opioid_review(b: Builder) -> None:
    """Opioid stewardship: the care team reviews the short course on its review day."""
    if b.defn.safety is None or "prescribe_opioid_short_course" not in b.facts.taken:
        return
    s = b.defn.safety.rules
    if b.now >= s.opioid_review_day.value:
        b.review("opioid_review", "opioid_review", b.now,
                 f"Opioid short course started on day 0: review on day {s.opioid_review_day.value:g} — "
                 f"continue only if still needed, stop by day {s.opioid_stop_by_day.value:g}; check sedation, "
                 "falls and the bowel regimen.", review_day=s.opioid_review_day.value,
                 stop_by_day=s.opioid_stop_by_day.value, latest_pain_nrs=latest_pain(b.facts)[1])


def _side_effects(b: Builder) -> None:
    """Each reported side effect reaches a clinician; nothing is stopped automatically."""
    if not b.safety:
        return
    seen: dict[str, int] = {}
    for day, event in b.facts.of(SideEffectEvent):
        key = f"side_effect:{day:g}"
        seen[key] = seen.get(key, 0) + 1
        cause = key if seen[key] == 1 else f"{key}:{seen[key]}"
        b.review(cause, "side_effect", day,
                 f"Side effect reported on day {day:g} ({event.drug}: {event.effect}): clinician review. "
                 "Nothing is stopped automatically.", drug=event.drug, effect=event.effect)


# --- Responses to new information ------------------------------------------------------------

def _pain_responses(b: Builder) -> None:
    r = b.defn.rules
    reports = pain_reports(b.facts)[1:]
    lo, hi = r.nerve_block_from_day.value, r.nerve_block_until_day.value
    level = b.facts.enrollment.fracture_level
    scope = b.defn.level_aware.nerve_block_scope if b.defn.level_aware else None
    for day, nrs in reports:
        if lo <= day <= hi and nrs >= r.severe_pain_nrs.value and scope and level not in scope.levels:
            b.note("offer_nerve_block:out_of_scope", day,
                   f"Pain NRS {nrs} on day {day:g} >= {r.severe_pain_nrs.value:g} within days {lo:g}–{hi:g} would "
                   f"call for a nerve-root block offer, but the guideline's evidence covers root blocks for "
                   f"{', '.join(scope.levels)} fractures only: no offer for {level}; the care team decides.",
                   scope.cite())
            break
        if lo <= day <= hi and nrs >= r.severe_pain_nrs.value:
            b.act("offer_nerve_block", "offer_nerve_block", day,
                  f"Pain NRS {nrs} on day {day:g} >= {r.severe_pain_nrs.value:g} despite "
                  f"first-line analgesia, within days {lo:g}–{hi:g}: a "
                  f"{b.facts.enrollment.fracture_level} nerve-root block may be considered "
                  "(short-term relief, up to ~2 weeks). Needs clinician confirmation"
                  + (f"; the offer expires on day {hi:g} if not confirmed." if b.safety else "."),
                  basis=(r.severe_pain_nrs,), needs_confirmation=True, level=b.facts.enrollment.fracture_level,
                  **({"expires_day": hi} if b.safety else {}))
            break
    if b.safety and nerve_block_offer_expired(b.defn, b.facts, b.now):
        b.note("offer_nerve_block:expired", check_after(0, hi),
               f"Nerve-block offer not confirmed by day {hi:g}, the end of the acute phase: it has "
               "expired; a later confirmation is refused.", r.nerve_block_until_day.cite())
    _physical_therapy(b, reports)
    for day, nrs, lowest in pain_flares(b.defn, b.facts):
        b.act(f"order_adjacent_fracture_screening:flare:{day:g}", "order_adjacent_fracture_screening",
              day, f"Pain flare: NRS {nrs} on day {day:g} is >= {r.flare_rise_nrs.value:g} above the "
              f"lowest score {lowest} (<= {r.flare_baseline_max_nrs.value:g}): screen for a new "
              "adjacent-level fracture."
              + _imaging(b, "order_adjacent_fracture_screening", b.facts.enrollment.fracture_level),
              basis=(r.flare_rise_nrs, r.flare_baseline_max_nrs), trigger="pain_flare")


def _physical_therapy(b: Builder, reports: list[tuple[float, int]]) -> None:
    """PT once acute pain has subsided — from vcf-1.2 only on an osteoporotic MRI and no open
    neurological deficit, and only while pain is still subsided when that hold ends; a note says
    what it waits for."""
    r = b.defn.rules
    def subsided(report: tuple[float, int]) -> bool:
        return report[0] >= r.physical_therapy_from_day.value and report[1] <= r.physical_therapy_pain_nrs.value
    met = next((report for report in reports if subsided(report)), None)
    if met is None or b.done("refer_physical_therapy"):
        return
    cite = b.defn.actions["refer_physical_therapy"].cite()
    day, nrs = met
    why = (f"Pain NRS {nrs} on day {day:g} <= {r.physical_therapy_pain_nrs.value:g} "
           f"(from day {r.physical_therapy_from_day.value:g}): acute pain has subsided")
    if b.safety:
        mri_day = osteoporotic_mri_day(b.facts)
        if mri_day is None:
            b.note("refer_physical_therapy:held:mri", day, f"{why}, but PT is held until an MRI result "
                   "says osteoporotic (pathologic fracture not yet ruled out).", cite)
            return
        if neuro_deficit_open(b.facts):
            b.note("refer_physical_therapy:held:neuro", b.now, f"{why}, but PT is held while a neurological "
                   "deficit is open (until a neuro report says no deficit).", cite)
            return
        release = max(mri_day, neuro_cleared_day(b.facts))
        before = [report for report in reports if report[0] <= release]
        if day < release and not subsided(before[-1]):
            # The hold ended after pain rose again: PT waits for a report showing it has subsided.
            later = next((report for report in reports if report[0] > release and subsided(report)), None)
            if later is None:
                b.note("refer_physical_therapy:held:pain", release, f"PT hold ended on day {release:g}, but pain "
                       f"NRS {before[-1][1]} on day {before[-1][0]:g} is above "
                       f"{r.physical_therapy_pain_nrs.value:g}: PT when a report shows it has subsided.", cite)
                return
            day, nrs = later
            why = (f"Pain NRS {nrs} on day {day:g} <= {r.physical_therapy_pain_nrs.value:g}: acute pain has "
                   "subsided")
        day = max(day, release)
        why += f"; MRI says osteoporotic (day {mri_day:g})"
    b.act("refer_physical_therapy", "refer_physical_therapy", day,
          f"{why}; start core strengthening and posture work.",
          basis=(r.physical_therapy_from_day, r.physical_therapy_pain_nrs), focus=["core strengthening", "posture"])


def nerve_block_offer_expired(defn: PathwayDefinition, facts: PatientFacts, day: float) -> bool:
    """Whether a nerve-block offer stands unconfirmed past the acute phase (vcf-1.2 on)."""
    return (defn.safety is not None and "offer_nerve_block" in facts.taken
            and not decisions_of(facts, "confirm_nerve_block")
            and more_than(day, defn.rules.nerve_block_until_day.value))


def _radiograph_findings(b: Builder) -> None:
    r = b.defn.rules
    found = progression(b.defn, b.facts)
    if found:
        counts = ("counts as spinal deformity at the 12-week review, or as a criterion found after it "
                  f"until day {b.defn.safety.rules.review_hold_until_day.value:g} if that review referred no one"
                  if b.defn.safety else "counts as spinal deformity at the 12-week review")
        b.act("flag_progressive_deformity", "flag_progressive_deformity", found.day,
              f"Radiograph on day {found.day:g}: {found.reason}. Clinician review; {counts}.",
              basis=(r.kyphosis_progression_deg,) if "kyphosis" in found.reason else ())
    level = b.facts.enrollment.fracture_level
    for day, image in b.facts.of(RadiographEvent):
        new = image.new_fracture_level
        if new and new != level:
            b.act(f"flag_new_vertebral_fracture:{new}", "flag_new_vertebral_fracture", day,
                  f"Radiograph on day {day:g} shows a new fracture at {new} (enrolled: {level}).",
                  level=new)
            b.act(f"order_mri:{new}", "order_mri", day,
                  f"New fracture level {new} on day {day:g}: MRI to characterise it." + _imaging(b, "order_mri", new),
                  priority="routine", level=new)


def _immobilization(b: Builder) -> None:
    rule = b.defn.rules.immobilization_max_days
    for start, end in bed_bound_spells(b.facts):
        if end is None and more_than(b.now - start, rule.value):
            b.act(f"alert_prolonged_immobilization:{start:g}", "alert_prolonged_immobilization",
                  b.now, f"Bed-bound since day {start:g}: more than {rule.value:g} days. Prolonged "
                  "immobilization risks deconditioning, bone loss and DVT.", basis=(rule,), bed_bound_since=start)


def _results(b: Builder) -> None:
    for day, etiology in mri_results(b.facts):
        b.note(f"mri:{day:g}:{etiology}", day,
               "MRI: osteoporotic fracture confirmed." if etiology == "osteoporotic" else
               "MRI indeterminate: clinician review; pathologic fracture not ruled out.",
               b.defn.actions["order_mri"].cite())
        if etiology == "indeterminate" and b.safety:
            b.review(f"indeterminate_mri:{day:g}", "indeterminate_mri", day,
                     f"MRI on day {day:g} is indeterminate: a pathologic fracture is not ruled out. PT and "
                     "any augmentation referral stay held until an MRI result says osteoporotic.",
                     mri_day=day)
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

def _schedule(b: Builder) -> None:
    radiographs = b.defn.schedules.radiograph_days
    due = [d for d in radiographs.days if b.now >= d and d not in _radiographs_ordered(b)]
    # One task per need (vcf-1.2): radiographs that fall due together (after a pause) are one order.
    for group in ([due] if b.safety and due else [[d] for d in due]):
        weeks = " and ".join(f"{d // 7}" for d in group)
        b.act(f"order_radiograph:day-{'+'.join(str(d) for d in group)}", "order_radiograph", b.now,
              f"Scheduled follow-up radiograph, week {weeks} (day {', '.join(str(d) for d in group)})"
              + (" — due together after a pause: one order" if len(group) > 1 else "")
              + ": fracture healing, vertebral height, progressive deformity."
              + _imaging(b, "order_radiograph", b.facts.enrollment.fracture_level),
              basis=(radiographs,), week=group[-1] // 7, scheduled_day=group[-1],
              level=b.facts.enrollment.fracture_level,
              **({"scheduled_days": group} if len(group) > 1 else {}))
    screenings = b.defn.schedules.screening_days
    for d in screenings.days:
        if b.now < d:
            continue
        flare = _recent_flare_screening(b, d)
        if flare is not None:
            assert b.defn.safety is not None
            rule = b.defn.safety.rules.screening_skip_after_flare_days
            b.note(f"order_adjacent_fracture_screening:day-{d}:skipped", b.now,
                   f"Scheduled adjacent-fracture screening (day {d}) skipped: a flare-triggered screening "
                   f"was ordered on day {flare:g}, within {rule.value:g} days.", rule.cite())
            continue
        b.act(f"order_adjacent_fracture_screening:day-{d}", "order_adjacent_fracture_screening",
              b.now, f"Scheduled screening for adjacent-level fractures at day {d} "
              f"(~{round(d / 30.4)} months): risk is raised after one VCF."
              + _imaging(b, "order_adjacent_fracture_screening", b.facts.enrollment.fracture_level),
              basis=(screenings,), trigger="schedule", scheduled_day=d)


def _radiographs_ordered(b: Builder) -> set[int]:
    """Scheduled days whose radiograph was ordered (one order may cover several days)."""
    taken = set(b.facts.taken) | {a.id for a in b.decision.actions}
    return {int(day) for action_id in taken if action_id.startswith("order_radiograph:day-")
            for day in action_id.removeprefix("order_radiograph:day-").split("+")}


def _recent_flare_screening(b: Builder, scheduled_day: int) -> float | None:
    """Day of a flare-triggered screening within the skip window before a scheduled one is ordered
    (vcf-1.2). On schedule it is ordered on its day (its alarm rings a second later); after a pause,
    on resume — so a flare screening ordered during the pause counts."""
    if b.defn.safety is None or b.done(f"order_adjacent_fracture_screening:day-{scheduled_day}"):
        return None
    window = b.defn.safety.rules.screening_skip_after_flare_days.value
    ordered_on = scheduled_day if b.now - scheduled_day <= GRACE else b.now
    flares = [day for action_id, day in b.facts.taken.items()
              if action_id.startswith("order_adjacent_fracture_screening:flare:")]
    recent = [day for day in flares if 0 <= ordered_on - day <= window]
    return max(recent) if recent else None


def _follow_up_gaps(b: Builder) -> None:
    r = b.defn.rules
    if b.now >= r.completion_day.value:
        return
    since = gap_reference_day(b.facts)
    last_report = latest_pain(b.facts)[0]
    contact = (f"no pain report since day {since:g}" if since == last_report else
               f"no pain report since the pathway resumed on day {since:g} (last report day {last_report:g})")
    gaps: tuple[tuple[ActionKind, Rule], ...] = (("outreach_missed_follow_up", r.outreach_after_days),
                                                  ("escalate_lost_to_follow_up", r.escalate_after_days))
    for kind, rule in gaps:
        if more_than(b.now - since, rule.value):
            b.act(f"{kind}:{since:g}", kind, b.now,
                  f"{contact[0].upper()}{contact[1:]}: more than {rule.value:g} days.",
                  basis=(rule,), last_contact_day=round(since, 3))


def _completed(defn: PathwayDefinition, facts: PatientFacts, b: Builder) -> bool:
    if b.now < defn.rules.completion_day.value:
        return False
    done = set(facts.taken) | set(facts.noted) | {a.id for a in b.decision.actions} | {n.id for n in b.decision.notes}
    screening = "order_adjacent_fracture_screening:day-{}"
    return all({screening.format(d), screening.format(d) + ":skipped"} & done
               for d in defn.schedules.screening_days.days)


# --- Checks on incoming events, the clock, and status views -----------------------------------

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
    if defn.safety is not None:
        dues += _safety_dues(defn, facts)
    return sorted((d for d in dues if d.day > now), key=lambda d: d.day)


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


def escalation_state(facts: PatientFacts, now: float) -> str:
    """Operational flag for the care team: urgent, lost_to_follow_up, outreach, or none."""
    if neuro_deficit_open(facts):
        return "urgent_referral"
    since = gap_reference_day(facts)
    if f"escalate_lost_to_follow_up:{since:g}" in facts.taken:
        return "lost_to_follow_up"
    if f"outreach_missed_follow_up:{since:g}" in facts.taken:
        return "outreach"
    if "offer_nerve_block" in facts.taken and not decisions_of(facts, "confirm_nerve_block") \
            and "offer_nerve_block:expired" not in facts.noted:
        return "awaiting_confirmation"
    return "none"
