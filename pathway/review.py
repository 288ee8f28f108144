"""The 12-week review: a referral for evaluation for vertebral augmentation — or not, and why.

A patient keeps the guideline version it enrolled with, so two readings live here:

- **vcf-1.2 on (safety rules).** A referral needs an MRI result saying osteoporotic on file and
  current evidence: persistent pain counts only a pain report from the last 14 days before the
  review, or any later one while the review is held. When the MRI is not resulted (or was
  indeterminate), or no criterion is met without a recent pain report, the review is *held*: the
  care team is asked once (``request_clinician_review``, reason ``review_evidence_missing``) and
  the review is decided as soon as the evidence arrives, until day 182; after that a note says no
  referral will come from the pathway. After a review that referred no one, a criterion met later
  (until day 182) makes the referral then: progressive deformity, pulmonary dysfunction, or two
  pain reports at or above the threshold at least 14 days apart with none below it between — from
  revision 5 with the same evidence (a note says it waits for the MRI, and when it lapsed), from
  revision 6 not after a decline. From revision 7 a report of no pulmonary dysfunction after a
  referral that named it is noted for the care team.
- **Earlier versions.** The review reads the latest pain report whatever its age; only patients
  with a red flag for a pathologic fracture wait for the MRI.

A clinician's decision to decline augmentation stands in both: no referral after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import inf

from pathway.builder import Builder
from pathway.contract import ClinicianEvent, MriEvent, PainEvent, PulmonaryEvent, RadiographEvent
from pathway.facts import (
    SAME_INSTANT,
    PatientFacts,
    decisions_of,
    folded,
    genant_grade,
    greatest_height_loss,
    latest_height_loss,
    latest_pain,
    memoised_under,
    more_than,
    mri_results,
    neuro_deficit_open,
    neuro_episodes,
    osteoporotic_mri_day,
    pain_reports_from,
    pause_state,
    progression,
    pulmonary_dysfunction,
)
from pathway.guideline import PathwayDefinition, Rule, derived
from pathway.quiet import more_than_from, step
from pathway.results import enrolled_mri_also_waited, other_region_mri

REVIEW = "twelve_week_review"
EVIDENCE = ("Evidence: VERTOS II enrolled acute fractures (pain up to 6 weeks); 53% of screened patients "
            "improved without augmentation. VERTOS IV (sham-controlled) found no pain difference at 12 "
            "months. AAOS 2010: strong recommendation against vertebroplasty; kyphoplasty a weak "
            "recommendation. A referral for evaluation, not an order.")


def review_criteria(defn: PathwayDefinition, facts: PatientFacts,
                    pain_from: float = 0.0) -> tuple[list[str], list[str]]:
    """The augmentation criteria met now, and the facts behind each; pain counts only a report
    observed on or after ``pain_from`` (the enrollment score is the report at day 0)."""
    r = defn.rules
    criteria, why = [], []
    recent = pain_reports_from(facts, pain_from)
    if recent and recent[-1][1] >= r.persistent_pain_nrs.value:
        day, nrs = recent[-1]
        criteria.append("persistent_pain")
        why.append(f"latest pain NRS {nrs} (day {day:g}) >= {r.persistent_pain_nrs.value:g}")
    found = progression(defn, facts)
    if found:
        criteria.append("spinal_deformity")
        why.append(f"progressive deformity ({found.reason})")
    if pulmonary_dysfunction(facts):
        criteria.append("pulmonary_dysfunction")
        why.append(f"pulmonary dysfunction reported on day {facts.of(PulmonaryEvent)[-1][0]:g}")
    return criteria, why


def _review_may_change(b: Builder) -> float:
    """The review's instants: its day, then (vcf-1.2 on) the limit of a held review."""
    review_day = b.defn.rules.review_day.value
    if not b.reached(review_day):
        return review_day
    return more_than_from(b.now, 0, b.defn.safety.rules.review_hold_until_day.value) if b.defn.safety else inf


@step(PainEvent, RadiographEvent, PulmonaryEvent, MriEvent, ClinicianEvent, until=_review_may_change, others=False)
def twelve_week_review(b: Builder) -> None:
    """Hold, decide or revisit the review, as the patient's guideline version says."""
    if not b.reached(b.defn.rules.review_day.value) or b.done("refer_vertebral_augmentation"):
        return
    if b.revision >= 5 and not b.done(f"{REVIEW}:done") and pause_state(b.facts).paused \
            and not (b.revision >= 9 and b.done(f"{REVIEW}:held")):
        # A pause holds the review itself, not what is found after it — nor, from revision 9, the evidence a
        # review already held waits for: safety rule 1 decides it as soon as that arrives, until its limit.
        return
    if b.defn.safety is None:
        _review_before_safety_rules(b)
    elif b.done(f"{REVIEW}:done"):
        if b.revision < 5 or not _after_review_settled(b):
            _criteria_after_review(b)
    elif not b.done(f"{REVIEW}:lapsed"):
        _review_on_current_evidence(b)


@step(PulmonaryEvent)
def pulmonary_criterion_resolved(b: Builder) -> None:
    """From revision 7: a report of no pulmonary dysfunction after an augmentation referral that named it
    among its criteria (the latest finding by the referral said so) is noted for the care team: the
    referral is theirs to review, as after an MRI that changes (safety rule 4)."""
    referred = b.facts.taken.get("refer_vertebral_augmentation")
    if b.revision < 7 or referred is None or b.done("refer_vertebral_augmentation:pulmonary_resolved"):
        return
    reports = b.facts.of(PulmonaryEvent)
    before = [event for day, event in reports if day <= referred]
    resolved = next((day for day, event in reports if day > referred and not event.dysfunction), None)
    if before and before[-1].dysfunction and resolved is not None:
        b.note("refer_vertebral_augmentation:pulmonary_resolved", resolved,
               f"No pulmonary dysfunction reported on day {resolved:g}: the augmentation referral of day "
               f"{referred:g} named pulmonary dysfunction among its criteria; the care team reviews whether it goes "
               "ahead.", b.defn.actions["refer_vertebral_augmentation"].cite())


def review_held(facts: PatientFacts) -> bool:
    """Whether the review waits for evidence (and has neither been decided nor lapsed) — or, from
    revision 5, a referral on a criterion found after it waits for the MRI."""
    noted = facts.noted_ids()
    if f"{REVIEW}:criterion_held" in noted:
        return f"{REVIEW}:criterion_lapsed" not in noted and f"{REVIEW}:criterion_eased" not in noted \
            and "refer_vertebral_augmentation" not in facts.taken
    return f"{REVIEW}:held" in noted and f"{REVIEW}:done" not in noted and f"{REVIEW}:lapsed" not in noted


@dataclass(frozen=True)
class ReviewEvidence:
    """When the 12-week review came due with the schedule running — its day, or the resume when a
    pause held it — and the day from which pain reports count as current evidence for it."""

    reached: float
    pain_from: float


@memoised_under(ClinicianEvent)
def review_evidence(defn: PathwayDefinition, facts: PatientFacts) -> ReviewEvidence:
    """The review's evidence window (vcf-1.2 on): the last days before the review was reached, so that
    a review a pause held until much later never rests on a score from before the pause."""
    assert defn.safety is not None
    reached, paused = defn.rules.review_day.value, False
    for day, event in facts.of(ClinicianEvent):  # events on a day come before the steps due on it
        if day > reached and not paused:
            break  # the review came due while the schedule ran
        if event.decision == "pause":
            paused = True
        elif event.decision == "resume":
            paused, reached = False, max(reached, day)
    return ReviewEvidence(reached, reached - defn.safety.rules.review_evidence_window_days.value)


def _evidence_window(b: Builder) -> ReviewEvidence:
    """The review's evidence window as the decisions' revision reads it (before revision 2: from the
    review's own day, whatever held it)."""
    if b.revision >= 2:
        return review_evidence(b.defn, b.facts)
    return derived(b.defn, "review_evidence_at_its_day", _at_review_day)


def _at_review_day(defn: PathwayDefinition) -> ReviewEvidence:
    assert defn.safety is not None
    day = defn.rules.review_day.value
    return ReviewEvidence(day, day - defn.safety.rules.review_evidence_window_days.value)


def _review_on_current_evidence(b: Builder) -> None:
    assert b.defn.safety is not None
    r, s = b.defn.rules, b.defn.safety.rules
    review_day, hold_until = r.review_day.value, s.review_hold_until_day.value
    evidence = _evidence_window(b)
    window = evidence.pain_from
    resumed = pause_state(b.facts).last_resumed
    if 5 <= b.revision < 8 and resumed is not None and resumed > evidence.reached:
        # Held, then paused: decided on resume on the evidence of the days before it, as a review a pause held.
        # From revision 8 a review held before the pause keeps its window: any report from its first day on
        # counts, one sent during the pause included, as the care team's task asked.
        window = max(window, resumed - s.review_evidence_window_days.value)
    criteria, why = review_criteria(b.defn, b.facts, pain_from=window)
    missing = []
    if b.osteoporotic_mri() is None:
        missing.append("mri_result")
    if not criteria and not pain_reports_from(b.facts, window):
        missing.append("recent_pain_report")
    late = more_than(b.now, hold_until)  # only a pause keeps a review from being decided or lapsing by then
    if not missing and not (late and b.revision >= 2):
        _decide(b, criteria, why, held=b.done(f"{REVIEW}:held"))
        return
    every = " for each region imaged" if b.revision >= 6 and other_region_mri(b.defn, b.facts) else ""
    what = {"mri_result": f"MRI result saying osteoporotic{every}",
            "recent_pain_report": f"pain report from day {window:g} on"}
    wanted = " and ".join(f"a{'n' if m == 'mri_result' else ''} {what[m]}" for m in missing)
    lacked = " or ".join(f"a{'n' if m == 'mri_result' else ''} {what[m]}" for m in missing)  # "without ... or ..."
    lacking = " and no ".join(what[m] for m in missing)
    held = b.done(f"{REVIEW}:held")
    mri = _mri_status(b)
    if missing and not (late and (held or b.revision < 2)):  # asked once per review, also when a pause kept it late
        text = (f"12-week review (day {review_day:g}) held: no {lacking} ({mri}). A referral is never made on a "
                f"score from before day {window:g}; the review is decided when the evidence arrives (until day "
                f"{hold_until:g})." if not late else
                f"12-week review (day {review_day:g}) reached only on day {round(b.now, 1):g}, when the pathway "
                f"resumed, past day {hold_until:g}: no {lacking} ({mri}). The pathway makes no augmentation "
                "referral; the care team decides.")
        b.review("review_evidence_missing", "review_evidence_missing", b.now, text, missing=missing,
                 review_day=review_day, hold_until_day=hold_until)
    if not late:
        b.note(f"{REVIEW}:held", b.now, f"12-week review held: waiting for {wanted}.",
               s.review_evidence_window_days.cite())
        return
    found = f" ({'; '.join(why) if why else 'no criterion met'})"
    if held and missing:
        why_not = (f"12-week review held since day {evidence.reached:g} and still without {lacked} after day "
                   f"{hold_until:g}")
    elif held:
        why_not = (f"12-week review held since day {evidence.reached:g}; the pathway was paused when its evidence came "
                   f"and resumed on day {b.now:g}, past day {hold_until:g}{found}")
    else:
        why_not = (f"12-week review reached only on day {b.now:g}, when the pathway resumed after a pause, past "
                   f"day {hold_until:g}" + (f", without {lacked}" if missing else found))
    b.note(f"{REVIEW}:lapsed", b.now, f"{why_not}: the pathway makes no augmentation referral; the care team decides.",
           s.review_hold_until_day.cite())


def _decide(b: Builder, criteria: list[str], why: list[str], held: bool) -> None:
    review_day = b.defn.rules.review_day.value
    resumed = pause_state(b.facts).last_resumed
    on_resume = resumed is not None and b.now - resumed <= SAME_INSTANT  # decided as the pathway resumed
    kept = on_resume and resumed is not None and resumed > review_day  # a pause kept the review from coming due
    when = f"12-week review (day {review_day:g}" + (
        f", decided on day {b.now:g} when the {'pathway resumed' if on_resume else 'evidence arrived'})"
        if held else f", reached on day {b.now:g} when the pathway resumed)" if kept else ")")
    _review_note(b, why, when)
    if criteria:
        _refer(b, criteria, why, when)


def _review_note(b: Builder, why: list[str], when: str) -> None:
    r = b.defn.rules
    nrs = latest_pain(b.facts)[1]
    b.note(f"{REVIEW}:done", b.now, f"{when}: " + (
        "; ".join(why) + "." if why else
        f"no criterion met (latest pain NRS {nrs}"
        + (f" <= {r.resolved_pain_nrs.value:g}: resolved" if nrs <= r.resolved_pain_nrs.value else "")
        + "); continue conservative care."), r.review_day.cite(*_deformity_rules(b)))


def _deformity_rules(b: Builder) -> tuple[Rule, ...]:
    """The rule a progressive deformity found rests on beside the relative height loss: the kyphosis
    rise, a local default (so a text naming it is cited "(verify)")."""
    deformity = progression(b.defn, b.facts)
    return (b.defn.rules.kyphosis_progression_deg,) if deformity and "kyphosis" in deformity.reason else ()


def _after_review_settled(b: Builder) -> bool:
    """Whether nothing found after the review can matter any more (revision 5): past the hold limit,
    with no referral waiting for its MRI (or its lapse noted)."""
    assert b.defn.safety is not None
    limit = b.defn.safety.rules.review_hold_until_day.value
    if not more_than(b.now, limit):
        return False
    # Past the limit: settled once the lapse is noted, or when the newest observation is from after the limit
    # (only evidence observed by the limit and reported late can still name a criterion found in time).
    return b.done(f"{REVIEW}:criterion_lapsed") or not b.facts.observations or b.facts.observations[-1].day > limit


def _criteria_after_review(b: Builder) -> None:
    """A criterion newly met after a review that referred no one, until the hold limit; none once
    the referral was noted as declined (revision 6: the decline stands, nothing more is said)."""
    assert b.defn.safety is not None
    if b.revision >= 6 and b.done(f"{REVIEW}:declined"):
        return
    r, s = b.defn.rules, b.defn.safety.rules
    limit = s.review_hold_until_day.value
    found: list[tuple[float, str, str]] = []
    deformity = progression(b.defn, b.facts)
    if deformity:
        found.append((deformity.day, "spinal_deformity", f"progressive deformity ({deformity.reason})"))
    pulmonary = b.facts.of(PulmonaryEvent)
    if pulmonary and pulmonary[-1][1].dysfunction:
        day = pulmonary[-1][0]
        found.append((day, "pulmonary_dysfunction", f"pulmonary dysfunction reported on day {day:g}"))
    pair = _persistent_pair(b.defn, b.facts, _evidence_window(b), current=b.revision >= 8)
    if pair:
        (d1, n1), (d2, n2) = pair
        found.append((d2, "persistent_pain", f"pain NRS {n1} on day {d1:g} and NRS {n2} on day {d2:g}, "
                      f"{d2 - d1:g} days apart (>= {s.later_pain_apart_days.value:g}), none below "
                      f"{r.persistent_pain_nrs.value:g} between"))
    found = sorted(f for f in found if f[0] <= limit)
    if not found:
        if b.revision >= 8 and b.done(f"{REVIEW}:criterion_held"):
            _criterion_eased(b)
        return
    when = f"Criterion met after the 12-week review (day {found[0][0]:g}, within day {limit:g})"
    if b.revision < 5:
        if b.osteoporotic_mri() is not None:
            _refer(b, [c for _, c, _ in found], [w for _, _, w in found], when)
        return
    # Revision 5: the same evidence as the review, by the same limit (safety rules 1 and 2).
    late = more_than(b.now, limit)
    if b.osteoporotic_mri() is not None and not late:
        _refer(b, [c for _, c, _ in found], [w for _, _, w in found], when)
    elif not late:
        b.note(f"{REVIEW}:criterion_held", b.now, f"{when}: {'; '.join(w for _, _, w in found)}. The referral "
               f"waits for an MRI result saying osteoporotic ({_mri_status(b)}), until day {limit:g}.",
               s.review_hold_until_day.cite(*_deformity_rules(b)))
    else:
        why_not = ("no MRI result saying osteoporotic by day" if b.done(f"{REVIEW}:criterion_held") else
                   f"known only on day {round(b.now, 1):g}, after day")
        b.note(f"{REVIEW}:criterion_lapsed", b.now, f"{when}: {'; '.join(w for _, _, w in found)}; but {why_not} "
               f"{limit:g}: the pathway makes no augmentation referral; the care team decides.",
               s.review_hold_until_day.cite(*_deformity_rules(b)))


def _criterion_eased(b: Builder) -> None:
    """A criterion that waited for the MRI no longer holds (revision 8): the pain eased, or a report said no
    pulmonary dysfunction. Noted once, so the care team knows no referral comes of it and the hold ends."""
    assert b.defn.safety is not None
    r, s = b.defn.rules, b.defn.safety.rules
    reasons = []
    pain = pain_reports_from(b.facts, _evidence_window(b).pain_from)
    if pain and pain[-1][1] < r.persistent_pain_nrs.value:
        reasons.append(f"pain NRS {pain[-1][1]} on day {pain[-1][0]:g} is below {r.persistent_pain_nrs.value:g}")
    pulmonary = b.facts.of(PulmonaryEvent)
    if pulmonary and not pulmonary[-1][1].dysfunction:
        reasons.append(f"no pulmonary dysfunction reported on day {pulmonary[-1][0]:g}")
    b.note(f"{REVIEW}:criterion_eased", b.now,
           f"The criterion found after the 12-week review no longer holds ({'; '.join(reasons) or 'not met now'}): "
           f"no augmentation referral on it. A run of pain reports of NRS {r.persistent_pain_nrs.value:g} or more "
           f"lasting {s.later_pain_apart_days.value:g} days, a progressive deformity or pulmonary dysfunction still "
           f"counts until day {s.review_hold_until_day.value:g}.", s.review_hold_until_day.cite(*_deformity_rules(b)))


Report = tuple[float, int]


def _persistent_pair(defn: PathwayDefinition, facts: PatientFacts, evidence: ReviewEvidence,
                     current: bool = False) -> tuple[Report, Report] | None:
    """The first two reports at or above the persistent-pain threshold, far enough apart, with
    none below it between (counted from the review's evidence window). ``current`` (revision 8): only
    while the pain still persists — a report below the threshold since ends the run, and a new run has
    to last as long again (a referral waiting for its MRI is never made on pain that has since eased)."""
    assert defn.safety is not None
    threshold = defn.rules.persistent_pain_nrs.value
    apart = defn.safety.rules.later_pain_apart_days.value
    window = evidence.pain_from

    def report(watch: _PairWatch, day: float, nrs: int) -> None:
        if (watch.pair is not None and not current) or day < window:
            return
        if nrs < threshold:
            watch.first = watch.pair = None
        elif watch.first is None:
            watch.first = (day, nrs)
        elif watch.pair is None and day - watch.first[0] >= apart - 1e-9:
            watch.pair = (watch.first, (day, nrs))

    def start() -> _PairWatch:
        watch = _PairWatch()
        report(watch, 0.0, facts.enrollment.pain_nrs)  # the enrollment score is the report at day 0
        return watch

    return folded(facts, "persistent_run" if current else "persistent_pair", PainEvent, start,
                  lambda w, day, event: report(w, day, event.nrs), under=evidence).pair  # kept per window


@dataclass
class _PairWatch:
    """Pain reports read so far: the first of the current run at or above the threshold, the pair."""

    first: Report | None = None
    pair: tuple[Report, Report] | None = None


def _refer(b: Builder, criteria: list[str], why: list[str], when: str) -> None:
    r = b.defn.rules
    declined = decisions_of(b.facts, "decline_augmentation")
    if declined:
        day, decision = declined[0]
        b.note(f"{REVIEW}:declined", b.now, f"{when}: criteria met ({'; '.join(why)}), but augmentation was declined "
               f"by {decision.author} on day {day:g} ({decision.reason}): no referral.", r.review_day.cite())
        return
    graded = greatest_height_loss(b.facts) if b.revision >= 8 else latest_height_loss(b.facts)
    grade = genant_grade(b.defn, graded)
    kyphoplasty = grade >= r.kyphoplasty_min_genant_grade.value or "spinal_deformity" in criteria
    graded_as = f"Genant grade {grade}: height loss {graded:g}%" if b.revision >= 8 else f"Genant grade {grade}"
    suggestion = (f"balloon kyphoplasty suggested ({graded_as}"
                  + (", progressive deformity)" if "spinal_deformity" in criteria else ")") if kyphoplasty else
                  f"vertebroplasty suggested ({graded_as}, no progressive deformity) — AAOS 2010 "
                  "makes a strong recommendation against vertebroplasty")
    basis = (r.review_day, r.persistent_pain_nrs, *_deformity_rules(b))
    mri_day = b.osteoporotic_mri() if b.safety else osteoporotic_mri_day(b.facts)
    level = b.facts.enrollment.fracture_level
    region = b.defn.region("refer_vertebral_augmentation", level)
    codes = " / ".join(f"CPT {c.code}" for c in b.defn.order_for("refer_vertebral_augmentation", level)[1] if c.code)
    b.act("refer_vertebral_augmentation", "refer_vertebral_augmentation", b.now,
          f"{when}: {'; '.join(why)}. Referral for evaluation for vertebral augmentation"
          + (f" of the {level} fracture ({region}: {codes})" if region else "") + f"; {suggestion}. "
          + (f"MRI on day {mri_day:g}: osteoporotic. " if mri_day is not None else "") + _new_levels(b)
          + _open_deficit(b) + EVIDENCE,
          basis=basis, criteria=criteria, level=level,
          suggested_procedure="balloon_kyphoplasty" if kyphoplasty else "vertebroplasty",
          genant_grade=grade, latest_pain_nrs=latest_pain(b.facts)[1])


def _open_deficit(b: Builder) -> str:
    """A neurological deficit still open at the referral: augmentation does not relieve a compromised canal
    or root, so the evaluation is the spine surgeon's, who was referred to urgently."""
    if not neuro_deficit_open(b.facts):
        return ""
    return (f"A neurological deficit is open (since day {neuro_episodes(b.facts)[-1]:g}; urgent spine-surgery "
            "referral): augmentation does not relieve a compromised canal or root, so the spine surgeon weighs it. ")


def _new_levels(b: Builder) -> str:
    """The new fracture levels radiographs found since enrollment: the pain or deformity a referral rests
    on may come from one of them, which the evaluation has to tell apart."""
    level, found = b.facts.enrollment.fracture_level, dict[str, float]()
    for day, image in b.facts.of(RadiographEvent):
        new = image.new_fracture_level
        if new and new != level:
            found.setdefault(new, day)
    if not found:
        return ""
    named = ", ".join(f"{new} (day {day:g})" for new, day in found.items())
    return (f"New fracture since enrollment at {named}: the evaluation tells which level the pain or "
            "deformity comes from. ")


def _mri_status(b: Builder) -> str:
    """What the MRI results say of the enrolled fracture (from revision 6, not counting an MRI of a new
    fracture in another region, which is named as such)."""
    other = other_region_mri(b.defn, b.facts) if b.revision >= 6 else {}
    said = dict(mri_results(b.facts))  # an MRI of another region: what it says, by day
    results = [(day, etiology) for day, etiology in mri_results(b.facts) if day not in other]
    status = f"MRI on day {results[-1][0]:g}: {results[-1][1]}" if results else "MRI not resulted"
    enrolled = b.facts.enrollment.fracture_level
    return status + "".join((f"; the MRI on day {day:g} was taken as the new fracture's at {level} (the newest MRI "
                             f"order open), not {enrolled}'s, and says {said[day]}"
                             if enrolled_mri_also_waited(b.facts, day) else
                             f"; the MRI on day {day:g} imaged the new fracture at {level}, not {enrolled}, and "
                             f"says {said[day]}")
                            + ("" if said[day] == "osteoporotic" else ": a pathologic fracture is not ruled out there")
                            for day, level in other.items())


def _review_before_safety_rules(b: Builder) -> None:
    """The review of guideline versions before vcf-1.2, kept for the patients enrolled on them."""
    reviewed, held = b.done(f"{REVIEW}:done"), b.done(f"{REVIEW}:held")
    if reviewed and not held:
        return
    criteria, why = review_criteria(b.defn, b.facts)
    when = f"12-week review (day {b.defn.rules.review_day.value:g})"
    _review_note(b, why, when)
    if not criteria:
        return
    urgent = [f for f in b.facts.enrollment.red_flags if f in b.defn.urgent_mri_red_flags]
    if urgent and osteoporotic_mri_day(b.facts) is None:
        b.note(f"{REVIEW}:held", b.now, f"Referral held: red flag(s) {', '.join(urgent)} and no MRI "
               "result saying osteoporotic yet.", b.defn.actions["order_mri"].cite())
        return
    _refer(b, criteria, why, when)
