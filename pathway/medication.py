"""Medication decisions: calcitonin's window, hard stop and red flags; the opioid course and its
review. Pure (see :mod:`pathway.decisions`)."""

from __future__ import annotations

from math import inf

from pathway.builder import Builder
from pathway.contract import PainEvent
from pathway.facts import latest_pain
from pathway.quiet import step


def calcitonin_withheld(b: Builder) -> str:
    """Why calcitonin is not started (empty if it is): every reason that holds, the fracture's age first."""
    e, r = b.facts.enrollment, b.defn.rules
    age, window = e.onset_days_before_enrollment, r.calcitonin_max_fracture_age_days.value
    flags = [f for f in e.red_flags if b.defn.safety and f in b.defn.safety.calcitonin_withheld_red_flags]
    reasons = []
    if age > window:
        reasons.append(f"fracture {age} days old > {window:g}-day window (benefit is for acute pain only"
                       + ("" if flags else "; EMA restricts to short-term use") + ")")
    if flags:
        reasons.append(f"red flag {', '.join(flags)}: the FDA label warns of a malignancy signal with "
                       "calcitonin; EMA restricts it to short-term use")
    return "; ".join(reasons)


def opioid_order(b: Builder) -> None:
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


def stop_calcitonin(b: Builder, day: float, why: str, because: str = "") -> None:
    """Stop a calcitonin course the pathway started (``why``: the reason in its details; ``because``: what
    the rationale adds to it)."""
    if "start_calcitonin" in b.facts.taken or any(a.id == "start_calcitonin" for a in b.decision.actions):
        b.act("stop_calcitonin", "stop_calcitonin", day,
              f"Calcitonin stopped on day {day:g}: {why}{because}.", reason=why)


# Both read an enrollment action besides their own: taken in the first decision, before either is kept quiet.
@step(until=lambda b: b.next_instant(b.defn.rules.calcitonin_stop_day.value), others=False)
def calcitonin_hard_stop(b: Builder) -> None:
    stop = b.defn.rules.calcitonin_stop_day.value
    if b.reached(stop):
        stop_calcitonin(b, b.now, f"{stop:g}-day course complete (hard stop)", " (short-term use only)")


@step(until=lambda b: b.next_instant(b.defn.safety.rules.opioid_review_day.value) if b.defn.safety else inf,
      others=False)
def opioid_review(b: Builder) -> None:
    """Opioid stewardship: the care team reviews the short course on its review day."""
    if b.defn.safety is None or "prescribe_opioid_short_course" not in b.facts.taken:
        return
    s = b.defn.safety.rules
    if b.reached(s.opioid_review_day.value):
        pain_day, nrs = latest_pain(b.facts)
        b.review("opioid_review", "opioid_review", b.now,
                 f"Opioid short course started on day 0: review on day {s.opioid_review_day.value:g} — "
                 f"continue only if still needed, stop by day {s.opioid_stop_by_day.value:g}; check sedation, "
                 f"falls and the bowel regimen. Latest pain NRS {nrs} ("
                 + (f"day {pain_day:g}" if b.facts.of(PainEvent) else "at enrollment") + ").",
                 review_day=s.opioid_review_day.value, stop_by_day=s.opioid_stop_by_day.value,
                 latest_pain_nrs=nrs, latest_pain_day=round(pain_day, 3))
