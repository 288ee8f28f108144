"""Responses to new information: what the pathway does when a pain score, an image, a result,
a neurological finding, a side effect or a clinician's decision arrives.

Pure, like the rest of the decisions (see :mod:`pathway.decisions`): each step reads the facts and
proposes actions and notes through the :class:`~pathway.builder.Builder`, which keeps them to one
per cause. A pause does not hold these: new clinical information is always answered.
"""

from __future__ import annotations

import re
from math import floor, inf
from typing import Any, cast

from pathway.builder import Builder, sentence
from pathway.contract import (
    ActionKind,
    ClinicianEvent,
    DxaEvent,
    MobilityEvent,
    MriEvent,
    NeuroEvent,
    PainEvent,
    RadiographEvent,
    SideEffectEvent,
)
from pathway.facts import (
    SAME_INSTANT,
    PatientFacts,
    bed_bound_spells,
    check_after,
    decisions_of,
    first_pain_report,
    more_than,
    mri_results,
    neuro_cleared_day,
    neuro_deficit_open,
    neuro_episodes,
    pain_flares,
    pain_reports,
    progression,
)
from pathway.guideline import PathwayDefinition, Rule
from pathway.medication import stop_calcitonin
from pathway.quiet import more_than_from, step
from pathway.results import (
    RESULT_EVENT_FOR,
    OpenOrder,
    enrolled_mri_also_waited,
    mri_new_levels,
    new_level_mri_urgent,
    open_orders,
    other_region_mri,
    overdue_limit,
    refusal_note_id,
)

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


@step(NeuroEvent, MriEvent, others=False)
def urgent_safety(b: Builder) -> None:
    mri_pending = not mri_results(b.facts)
    for start in neuro_episodes(b.facts):
        if b.done(f"refer_urgent_spine_surgery:{start:g}"):
            continue  # referred (the text below is built only for what is new)
        at_enrollment = start == 0 and "neuro_deficit" in b.facts.enrollment.red_flags
        cause = ("The neuro_deficit red flag at enrollment" if at_enrollment
                 else f"Neurological deficit reported on day {start:g}")
        expedite = b.safety and mri_pending and not at_enrollment
        extra: dict[str, Any] = {"expedite_mri": True} if expedite else {}
        # A deficit reported late may already have a later report saying it cleared: the referral says so.
        cleared = next((day for day, event in b.facts.of(NeuroEvent) if day > start and not event.deficit), None)
        # PT referred before the deficit goes on unless someone stops it: the referral names it (safety rule 3).
        pt_day = b.facts.taken.get("refer_physical_therapy")
        b.act(f"refer_urgent_spine_surgery:{start:g}", "refer_urgent_spine_surgery", start,
              f"{cause}: urgent spine-surgery referral; the pathway goes on."
              + (f" A report on day {cleared:g} says no deficit: evaluate the episode." if cleared is not None else "")
              + (" Expedite the pending MRI: it is urgent now." if expedite else "")
              + (f" PT was referred on day {pt_day:g}: an open deficit holds PT, so review whether it goes on."
                 if b.safety and pt_day is not None and pt_day <= start else ""),
              priority="urgent", **extra)


def pathologic_finding(etiology: str) -> str:
    """What an MRI saying ``malignant`` or ``infection`` shows, in words ("an infective (pathologic) fracture")."""
    return f"{'an infective' if etiology == 'infection' else 'a ' + etiology} (pathologic) fracture"


@step(MriEvent, others=False)
def pathologic_fracture(b: Builder) -> bool:
    for day, etiology in mri_results(b.facts):
        if etiology in ("malignant", "infection"):
            specialty = "oncology" if etiology == "malignant" else "infectious_disease"
            stop_calcitonin(b, day, "pathologic fracture", "; the patient leaves the osteoporotic pathway"
                            + ("; the FDA label warns of a malignancy signal" if etiology == "malignant" else ""))
            of = _of_new_level(b, day)
            b.note(f"mri:{day:g}:{etiology}", day, f"MRI{of} shows {pathologic_finding(etiology)}: the pathway "
                   "exits.", b.defn.actions["order_mri"].cite())
            b.act("refer_pathologic_fracture_workup", "refer_pathologic_fracture_workup", day,
                  f"MRI on day {day:g}{of} shows {pathologic_finding(etiology)}: leave the "
                  "osteoporotic pathway, cancel pending radiographs, referrals and screening.",
                  priority="urgent", etiology=etiology,
                  refer_to=[specialty, "spine_surgery"], cancels=list(CANCELLED_ON_EXIT))
            if b.safety:
                drugs = [k for k in REVIEWED_ON_EXIT if k in b.facts.taken]
                b.review("pathologic_exit_medications", "pathologic_exit_medications", day,
                         f"Pathologic ({etiology}) fracture on MRI, day {day:g}: review the bisphosphonate "
                         f"and analgesics for the new diagnosis. {_calcitonin_on_exit(b)}", medications=drugs)
            return True
    return False


def _imaged_level(b: Builder, day: float) -> str | None:
    """The new fracture level the MRI result of ``day`` imaged (the MRI ordered for it; revision 6 on), or None."""
    return mri_new_levels(b.facts).get(day) if b.revision >= 6 else None


def _of_new_level(b: Builder, day: float) -> str:
    """" of the new T12 fracture" for an MRI result taken as the new level's MRI — saying so where the enrolled
    fracture's MRI also waited for its result then (an MRI names no level: the newest order open took it)."""
    imaged = _imaged_level(b, day)
    if imaged is None:
        return ""
    if enrolled_mri_also_waited(b.facts, day):
        return (f" of the new {imaged} fracture (taken as the newest MRI order open; the "
                f"{b.facts.enrollment.fracture_level} fracture's MRI also waited for its result)")
    return f" of the new {imaged} fracture"


def _calcitonin_on_exit(b: Builder) -> str:
    """What the exit stops, as it is: calcitonin only if it was still running."""
    if any(a.kind == "stop_calcitonin" for a in b.decision.actions):
        return "Nothing is stopped automatically but calcitonin."
    stopped = b.facts.taken.get("stop_calcitonin")
    return ("Nothing is stopped automatically (calcitonin " +
            (f"was stopped on day {stopped:g})." if stopped is not None else "was not started)."))


_STEP_NAMES = {"order_radiograph": "follow-up radiograph", "twelve_week_review": "12-week review",
               "order_adjacent_fracture_screening": "adjacent-fracture screening"}


def withdrawal_handover(b: Builder, day: float, not_taken: list[dict[str, object]]) -> None:
    """Hand the open orders over to the care team; they stay open (the pathway cancels nothing). The
    scheduled steps that came due and were never taken (``not_taken``) are named too."""
    if not b.safety:
        return
    still_open = _open_orders(b)
    steps = "; ".join(f"{_STEP_NAMES[str(s['step'])]} (day {s['scheduled_day']:g})" for s in not_taken)
    stop = b.defn.rules.calcitonin_stop_day
    in_course = any(row["kind"] == "start_calcitonin" for row in still_open)
    opioid = next((row for row in still_open if row["kind"] == "prescribe_opioid_short_course"), None)
    urgent = [str(row["id"]) for row in still_open if row.get("priority") == "urgent"]
    b.review("withdrawal_handover", "withdrawal_handover", day,
             f"Withdrawn from the pathway on day {day:g}: {len(still_open)} order(s) stay open for the care "
             "team, which now owns them (results after the end still fulfil them)."
             + (f" Urgent, still without a result: {', '.join(urgent)}." if urgent else "")
             + (f" Calcitonin runs on: its course ends on day {stop.value:g} (hard stop; short-term use "
                "only), which the pathway no longer does." if in_course else "")
             + (_opioid_handed_over(day, opioid) if opioid and "stop_by_day" in opioid else "")
             + (f" Came due and never taken (held by a pause, or waiting for evidence): {steps}." if steps else ""),
             open_orders=still_open, **({"steps_not_taken": not_taken} if not_taken else {}))


def _opioid_handed_over(day: float, opioid: dict[str, object]) -> str:
    """What the hand-over says of an opioid short course still open, as it stands on the day of the withdrawal."""
    review, stop = f"{opioid['review_day']:g}", f"{opioid['stop_by_day']:g}"
    course = " The opioid short course"
    if day < float(review):
        return f"{course}: its review on day {review} and its stop by day {stop} are the care team's now."
    if day < float(stop):
        return f"{course}, reviewed from day {review}, is to stop by day {stop}: the care team sees to it."
    return f"{course} was to stop by day {stop}: the care team confirms it has."


def _open_orders(b: Builder) -> list[dict[str, object]]:
    """The pathway's service and medication requests that no result or stop has closed, as it
    knows them (advice, flags and care-team tasks are not orders to hand over); from revision 9 not
    one whose task its performer rejected or failed either (a bisphosphonate refused for an allergy)."""
    unanswered = {o.action_id: o for o in open_orders(b.facts)}
    refused = b.facts.noted_ids() if b.revision >= 9 else set()
    stopped = "stop_calcitonin" in b.facts.taken or any(a.kind == "stop_calcitonin" for a in b.decision.actions)
    rows = []
    for action_id, day in sorted(b.facts.taken.items(), key=lambda item: (item[1], item[0])):
        kind = action_id.split(":")[0]
        spec = b.defn.actions.get(cast(ActionKind, kind))
        if spec is None or spec.resource not in ("ServiceRequest", "MedicationRequest") or kind == "stop_calcitonin":
            continue
        if (kind in RESULT_EVENT_FOR and action_id not in unanswered) or (kind == "start_calcitonin" and stopped) \
                or refusal_note_id(action_id) in refused:
            continue
        row: dict[str, object] = {"id": action_id, "kind": kind, "day": day}
        if action_id in unanswered and _urgent(b, unanswered[action_id]):
            row["priority"] = "urgent"  # an urgent MRI the care team must not let wait
        if kind == "start_calcitonin":
            row["stop_by_day"] = b.defn.rules.calcitonin_stop_day.value
        elif kind == "prescribe_opioid_short_course" and b.defn.safety and b.revision >= 6:  # when it was to end
            row["review_day"] = b.defn.safety.rules.opioid_review_day.value
            row["stop_by_day"] = b.defn.safety.rules.opioid_stop_by_day.value
        rows.append(row)
    return rows


def _urgent(b: Builder, order: OpenOrder) -> bool:
    """Whether an open imaging order is urgent (it escalates after the urgent limit)."""
    limit, safety = overdue_limit(b.defn, b.facts, order, b.revision), b.defn.safety
    return safety is not None and limit is not None and limit[0] is safety.rules.result_overdue_urgent_days


@step(SideEffectEvent, others=False)
def side_effects(b: Builder) -> None:
    """Each reported side effect reaches a clinician; nothing is stopped automatically."""
    if not b.safety:
        return
    seen: dict[str, int] = {}
    for day, event in b.facts.of(SideEffectEvent):
        key = f"side_effect:{day:g}"
        seen[key] = seen.get(key, 0) + 1
        cause = key if seen[key] == 1 else f"{key}:{seen[key]}"
        step = prescribed_by(event.drug)
        stopped = b.facts.taken.get("stop_calcitonin") if step == "start_calcitonin" else None
        ordered = b.facts.taken.get(step)
        not_ours = f"The pathway did not order {_DRUG_CLASS[step]}. " \
            if step in _DRUG_CLASS and (ordered is None or ordered > day) else ""
        b.review(cause, "side_effect", day,
                 f"Side effect reported on day {day:g} ({event.drug}: {event.effect}): clinician review. "
                 + (f"Calcitonin was stopped on day {stopped:g}. " if stopped is not None and stopped <= day else "")
                 + not_ours + "Nothing is stopped automatically.", step, drug=event.drug, effect=event.effect)


# Names of a drug of the pathway's own orders (generic and common brand names), and the order: a side
# effect's review cites the guideline section that prescribed it. Anything else is read as an analgesic.
_DRUG_NAMES: tuple[tuple[str, ActionKind], ...] = (
    (r"calcitonin|miacalcin|fortical", "start_calcitonin"),
    (r"dronate|dronic|bisphosphonate|boniva|fosamax|actonel|reclast|aclasta|zometa", "prescribe_bisphosphonate"),
    (r"\bcalcium\b(?![\s-]*channel)|\bvit(amin)?\.?\s*d[23]?\b|calciferol|calcitriol", "prescribe_calcium_vitamin_d"),
    (r"opioid|opiate|codone|morphone|morphine|tramadol|codeine|tapentadol|fentanyl|buprenorphine|methadone",
     "prescribe_opioid_short_course"),
)
_PRESCRIBED_BY = tuple((re.compile(pattern), kind) for pattern, kind in _DRUG_NAMES)
# What a review names when the drug was not the pathway's own order (calcitonin withheld, no opioid course).
_DRUG_CLASS: dict[ActionKind, str] = {"start_calcitonin": "calcitonin", "prescribe_bisphosphonate": "a bisphosphonate",
                                      "prescribe_calcium_vitamin_d": "calcium or vitamin D",
                                      "prescribe_opioid_short_course": "an opioid"}


def prescribed_by(drug: str) -> ActionKind:
    """The pathway's order a drug named in a side-effect report belongs to (first-line analgesia if none
    is named: acetaminophen, the NSAIDs, or a drug the report names in other words)."""
    named = drug.lower()
    for pattern, kind in _PRESCRIBED_BY:
        if pattern.search(named):
            return kind
    return "prescribe_first_line_analgesia"


@step(PainEvent, ClinicianEvent, MriEvent, NeuroEvent, until=lambda b: _offer_expiry(b), others=False)
def pain_responses(b: Builder) -> None:
    r = b.defn.rules
    lo, hi, severe = r.nerve_block_from_day.value, r.nerve_block_until_day.value, r.severe_pain_nrs.value
    level = b.facts.enrollment.fracture_level
    scope = b.defn.level_aware.nerve_block_scope if b.defn.level_aware else None
    # The first severe report in the window decides the offer (or the note): once done, no other can.
    offered = b.done("offer_nerve_block") or b.done("offer_nerve_block:out_of_scope") \
        or b.done("offer_nerve_block:reported_late")
    first = None if offered else first_pain_report(
        b.facts, "nerve_block_window", lambda day, nrs: lo <= day <= hi and nrs >= severe, under=b.defn)
    if first is not None:
        day, nrs = first
        if b.revision >= 3 and b.safety and more_than(b.now, hi):
            b.note("offer_nerve_block:reported_late", b.now,
                   f"Pain NRS {nrs} on day {day:g} >= {severe:g} within days {lo:g}–{hi:g} was reported on day "
                   f"{round(b.now, 1):g}, after the acute phase ended: no nerve-root block offer (it would expire "
                   "at once); the care team decides.", r.nerve_block_until_day.cite(r.severe_pain_nrs))
        elif scope and level not in scope.levels:
            b.note("offer_nerve_block:out_of_scope", day,
                   f"Pain NRS {nrs} on day {day:g} >= {severe:g} within days {lo:g}–{hi:g} would "
                   f"call for a nerve-root block offer, but the guideline's evidence does not cover {level}: it "
                   f"covers root blocks for {', '.join(scope.levels)} fractures only. No offer; the care team decides.",
                   scope.cite(r.severe_pain_nrs))
        else:
            b.act("offer_nerve_block", "offer_nerve_block", day,
                  f"Pain NRS {nrs} on day {day:g} >= {severe:g} despite "
                  f"first-line analgesia, within days {lo:g}–{hi:g}: {'an' if level.startswith('L') else 'a'} "
                  f"{level} nerve-root block may be considered "  # "an L2" (el), "a T12" (tee)
                  "(short-term relief, up to ~2 weeks). Needs clinician confirmation"
                  + (f"; the offer expires on day {hi:g} if not confirmed." if b.safety else ".")
                  + (" No MRI result saying osteoporotic stands: a pathologic fracture (infection, malignancy) is "
                     "not ruled out; weigh that before an injection." if b.safety and b.osteoporotic_mri() is None
                     else ""),
                  basis=(r.severe_pain_nrs,), needs_confirmation=True, level=level,
                  **({"expires_day": hi} if b.safety else {}))
    if b.safety and not b.done("offer_nerve_block:expired") and nerve_block_offer_expired(b.defn, b.facts, b.now):
        b.note("offer_nerve_block:expired", check_after(0, hi),
               f"Nerve-block offer not confirmed by day {hi:g}, the end of the acute phase: it has "
               "expired; a later confirmation is refused.", r.nerve_block_until_day.cite())
    if not b.done("refer_physical_therapy"):
        _physical_therapy(b)
    for day, nrs, lowest in pain_flares(b.defn, b.facts):
        flare = f"order_adjacent_fracture_screening:flare:{day:g}"
        if b.done(flare) or b.done(f"{flare}:covered"):
            continue
        waiting = _screening_waiting(b, day) if b.revision >= 3 else None
        if waiting is not None:  # one task per need: the screening just ordered images the same regions
            after = " (after the flare)" if b.revision >= 9 and waiting.day > day + SAME_INSTANT else ""
            b.note(f"{flare}:covered", b.now,
                   f"Pain flare: NRS {nrs} on day {day:g} is >= {r.flare_rise_nrs.value:g} above the lowest score "
                   f"{lowest}, but the adjacent-fracture screening ordered on day {waiting.day:g}{after} still waits "
                   "for its result: no second screening.", b.defn.cite(
                       "order_adjacent_fracture_screening", basis=(r.flare_rise_nrs, r.flare_baseline_max_nrs,
                                                                   *_skip_window(b))))
            continue
        b.act(flare, "order_adjacent_fracture_screening",
              day, f"Pain flare: NRS {nrs} on day {day:g} is >= {r.flare_rise_nrs.value:g} above the "
              f"lowest score {lowest} (<= {r.flare_baseline_max_nrs.value:g}): screen for a new "
              "adjacent-level fracture."
              + imaging_text(b, "order_adjacent_fracture_screening", b.facts.enrollment.fracture_level),
              basis=(r.flare_rise_nrs, r.flare_baseline_max_nrs), trigger="pain_flare",
              level=b.facts.enrollment.fracture_level)


def _covers_in_window(b: Builder) -> bool:
    """Whether a screening waiting for its film covers a flare within the skip window (revisions 6 to 8)."""
    return 6 <= b.revision < 9 and b.defn.safety is not None


def _skip_window(b: Builder) -> tuple[Rule, ...]:
    """The window within which a screening covers a later flare, as the decisions' revision reads it."""
    return (b.defn.safety.rules.screening_skip_after_flare_days,) if _covers_in_window(b) and b.defn.safety else ()


def _screening_waiting(b: Builder, flare_day: float) -> OpenOrder | None:
    """An adjacent-fracture screening that still waits for its result and covers a flare observed on
    ``flare_day``, if any: one ordered on this pathway day (revision 3: a flare hours after the
    scheduled screening was ordered is that screening's need), or (revisions 6 to 8) within the skip
    window before it — the film not yet taken images the same regions. From revision 9 a flare
    reported on a later day orders its own screening at once, as the contract says (the film still
    missing is the overdue escalation's task, and a flare is new information), unless the screening
    was ordered after the flare was observed (a flare reported late): that film is the flare's."""
    if _covers_in_window(b) and b.defn.safety:
        # From revision 8 a screening ordered exactly the window's length before counts, as the scheduled
        # skip counts it: the workflow decides a flare an instant after it was observed, not at it.
        since = b.now - b.defn.safety.rules.screening_skip_after_flare_days.value - (SAME_INSTANT if b.revision >= 8
                                                                                      else 0)
        waiting = [o for o in open_orders(b.facts)
                   if o.kind == "order_adjacent_fracture_screening" and o.day >= since]
    else:
        since = flare_day - SAME_INSTANT if b.revision >= 9 else inf
        waiting = [o for o in open_orders(b.facts) if o.kind == "order_adjacent_fracture_screening"
                   and (floor(o.day) == floor(b.now) or o.day >= since)]
    return waiting[-1] if waiting else None


def _offer_expiry(b: Builder) -> float:
    """When an unconfirmed nerve-block offer could expire (vcf-1.2 on)."""
    return more_than_from(b.now, 0, b.defn.rules.nerve_block_until_day.value) if b.safety else inf


def _physical_therapy(b: Builder) -> None:
    """PT once acute pain has subsided — from vcf-1.2 only on an osteoporotic MRI and no open
    neurological deficit, and only while pain is still subsided when that hold ends; a note says
    what it waits for."""
    r = b.defn.rules
    start, limit = r.physical_therapy_from_day.value, r.physical_therapy_pain_nrs.value
    def subsided(report: tuple[float, int]) -> bool:
        return report[0] >= start and report[1] <= limit
    met = first_pain_report(b.facts, "pain_subsided", lambda day, nrs: day >= start and nrs <= limit, under=b.defn)
    if met is None or b.done("refer_physical_therapy"):
        return
    cite = b.defn.cite("refer_physical_therapy", (r.physical_therapy_from_day, r.physical_therapy_pain_nrs))
    day, nrs = met
    why = (f"Pain NRS {nrs} on day {day:g} <= {r.physical_therapy_pain_nrs.value:g} "
           f"(from day {r.physical_therapy_from_day.value:g}): acute pain has subsided")
    if b.safety:
        mri_day = b.osteoporotic_mri()
        if mri_day is None:
            neuro = (", and while a neurological deficit is open (until a neuro report says no deficit)"
                     if neuro_deficit_open(b.facts) else "")
            b.note("refer_physical_therapy:held:mri", day, f"{why}, but PT is held until an MRI result "
                   f"says osteoporotic (pathologic fracture not yet ruled out){neuro}.", cite)
            return
        if neuro_deficit_open(b.facts):
            b.note("refer_physical_therapy:held:neuro", b.now, f"{why}, but PT is held while a neurological "
                   "deficit is open (until a neuro report says no deficit).", cite)
            return
        release = max(mri_day, neuro_cleared_day(b.facts))
        reports = pain_reports(b.facts)[1:]
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
        cleared = neuro_cleared_day(b.facts)
        if cleared > 0:
            why += f"; neurological deficit resolved (day {cleared:g})"
    latest = pain_reports(b.facts)[-1]
    if b.revision >= 3 and latest[0] > met[0] and not subsided(latest):
        # The report PT rests on arrived after a later one that is not subsided: pain has not subsided now.
        b.note("refer_physical_therapy:held:pain", b.now, f"{why}, but the latest report, NRS {latest[1]} on day "
               f"{latest[0]:g}, is above {limit:g}: PT when a report shows it has subsided.", cite)
        return
    b.act("refer_physical_therapy", "refer_physical_therapy", day,
          f"{why}; start core strengthening and posture work.",
          basis=(r.physical_therapy_from_day, r.physical_therapy_pain_nrs), focus=["core strengthening", "posture"])


def _deformity_counts(b: Builder) -> str:
    """What a deformity flagged now means for the augmentation referral."""
    referred = b.facts.taken.get("refer_vertebral_augmentation")
    if referred is not None:
        return f"the augmentation referral was already made on day {referred:g}"
    declined = decisions_of(b.facts, "decline_augmentation")
    if declined:
        day, decision = declined[0]
        return (f"augmentation was declined by {decision.author} on day {day:g}: the pathway makes no referral; "
                "the care team decides")
    if b.defn.safety is None:
        return "counts as spinal deformity at the 12-week review"
    limit = b.defn.safety.rules.review_hold_until_day.value
    if more_than(b.now, limit):
        return (f"found after day {limit:g}, it makes no augmentation referral from the pathway; the care team "
                "decides")
    return ("counts as spinal deformity at the 12-week review, or as a criterion found after it until day "
            f"{limit:g} if that review referred no one")


def nerve_block_offer_expired(defn: PathwayDefinition, facts: PatientFacts, day: float) -> bool:
    """Whether a nerve-block offer stands unconfirmed past the acute phase (vcf-1.2 on)."""
    return (defn.safety is not None and "offer_nerve_block" in facts.taken
            and not decisions_of(facts, "confirm_nerve_block")
            and more_than(day, defn.rules.nerve_block_until_day.value))


@step(RadiographEvent, others=False)
def radiograph_findings(b: Builder) -> None:
    r = b.defn.rules
    found = progression(b.defn, b.facts)
    if found and not b.done("flag_progressive_deformity"):
        b.act("flag_progressive_deformity", "flag_progressive_deformity", found.day,
              f"Radiograph on day {found.day:g}: {found.reason}. Clinician review; {_deformity_counts(b)}.",
              basis=(r.kyphosis_progression_deg,) if "kyphosis" in found.reason else (), **found.measured)
    level = b.facts.enrollment.fracture_level
    seen: dict[float, int] = {}  # films read per instant: from revision 7 a second one is read in a note too
    for day, image in b.facts.of(RadiographEvent):
        seen[day] = seen.get(day, 0) + 1
        new = image.new_fracture_level
        if new and new != level:
            b.act(f"flag_new_vertebral_fracture:{new}", "flag_new_vertebral_fracture", day,
                  f"Radiograph on day {day:g} shows a new fracture at {new} (enrolled: {level}).",
                  level=new)
            urgent = [f for f in b.facts.enrollment.red_flags if f in b.defn.urgent_mri_red_flags] \
                if new_level_mri_urgent(b.defn, b.facts, b.revision) else []
            b.act(f"order_mri:{new}", "order_mri", day,
                  f"New fracture level {new} on day {day:g}: MRI to characterise it"
                  + (f", urgent: red flag(s) at enrollment {', '.join(urgent)} (a new fracture may be the same "
                     "disease)." if urgent else ".")
                  + imaging_text(b, "order_mri", new),
                  priority="urgent" if urgent else "routine", level=new)
        read = f"radiograph:{day:g}" + (f":{seen[day]}" if seen[day] > 1 and b.revision >= 7 else "")
        if b.revision >= 3 and not b.done(read):  # every result is read, flagged or not
            flagged_now = found is not None and found.day == day and (b.revision < 7 or all(
                getattr(image, key) == value for key, value in found.measured.items() if hasattr(image, key)))
            b.note(read, day,
                   f"Radiograph read: height loss {image.height_loss_pct:g}%"
                   + (f", kyphosis {image.kyphosis_deg:g}°" if image.kyphosis_deg is not None else "")
                   + (f", new fracture at {new}" if new and new != level else "")
                   + ("; progressive deformity flagged." if flagged_now else "."),
                   b.defn.cite("order_radiograph", basis=(r.kyphosis_progression_deg,)
                               if flagged_now and found and "kyphosis" in found.reason else ()))


@step(MobilityEvent, until=lambda b: min((more_than_from(b.now, start, b.defn.rules.immobilization_max_days.value)
                                         for start, end in bed_bound_spells(b.facts) if end is None), default=inf),
      others=False)
def immobilization(b: Builder) -> None:
    rule = b.defn.rules.immobilization_max_days
    for start, end in bed_bound_spells(b.facts):
        if end is None and more_than(b.now - start, rule.value):
            b.act(f"alert_prolonged_immobilization:{start:g}", "alert_prolonged_immobilization",
                  b.now, f"Bed-bound since day {start:g}: more than {rule.value:g} days. Prolonged "
                  "immobilization risks deconditioning, bone loss and DVT.", basis=(rule,), bed_bound_since=start)


@step(MriEvent, DxaEvent, ClinicianEvent, others=False)
def results_read(b: Builder) -> None:
    for day, etiology in mri_results(b.facts):
        if b.done(f"mri:{day:g}:{etiology}") and (etiology != "indeterminate" or not b.safety
                                                  or b.done(f"request_clinician_review:indeterminate_mri:{day:g}")):
            continue  # read already (the texts below are built only for what is new)
        regions = other_region_mri(b.defn, b.facts) if b.revision >= 6 else {}
        other = regions.get(day)
        mri = f"MRI{_of_new_level(b, day)}"  # of a new level in the enrolled region, if it was ordered for one
        read = (f"{mri}: osteoporotic fracture confirmed." if etiology == "osteoporotic" else
                f"{mri} indeterminate: clinician review; pathologic fracture not ruled out.")
        if other:  # the MRI of a new fracture in another region: it says nothing of the enrolled one
            read = _other_region_read(b, day, etiology, other, regions)
        b.note(f"mri:{day:g}:{etiology}", day, read,
               b.defn.actions["order_mri"].cite())
        if etiology == "indeterminate" and b.safety:
            _indeterminate_mri_review(b, day)
    limit = b.defn.rules.osteoporosis_t_score.value
    for day, dxa in b.facts.of(DxaEvent):
        t = dxa.t_score
        if b.done(f"dxa:{day:g}"):
            continue
        b.note(f"dxa:{day:g}", day,
               f"DXA T-score {t:g} <= {limit:g}: osteoporosis confirmed." if t <= limit else
               f"DXA T-score {t:g} > {limit:g}; treatment stays indicated by the fragility fracture.",
               b.defn.rules.osteoporosis_t_score.cite())
    for day, _ in decisions_of(b.facts, "confirm_nerve_block"):
        b.note(f"nerve_block_confirmed:{day:g}", day, "Nerve-root block confirmed by a clinician.",
               b.defn.cite("offer_nerve_block"))


def _other_region_read(b: Builder, day: float, etiology: str, new_level: str, other: dict[float, str]) -> str:
    """The note on the MRI of a new fracture in another region (decisions revision 6): what it says of
    that fracture, that it does not image the enrolled one, and what PT and referrals wait for
    (``other``: :func:`pathway.results.other_region_mri`)."""
    level = b.facts.enrollment.fracture_level
    enrolled = [e for d, e in mri_results(b.facts) if d not in other and d <= day]
    guessed = enrolled_mri_also_waited(b.facts, day)
    guess = f"; taken as the newest MRI order open, while the {level} fracture's MRI also waited" if guessed else ""
    text = (f"MRI for the new fracture at {new_level} ({b.defn.region('order_mri', new_level)}{guess}): {etiology}"
            + (": clinician review; pathologic fracture not ruled out" if etiology == "indeterminate" else "")
            + (f". It is not counted for the {level} fracture ({b.defn.region('order_mri', level)}; a result sent "
               f"for the {level} MRI order is)" if guessed else
               f". It does not image the {level} fracture ({b.defn.region('order_mri', level)})"))
    if etiology != "osteoporotic":
        return text + f"; PT and any augmentation referral wait until an MRI of the {new_level} region says " \
            "osteoporotic."
    if not enrolled or enrolled[-1] != "osteoporotic":
        return text + f": PT and any augmentation referral still wait for the {level} fracture's MRI result."
    return text + "."


# The referrals an indeterminate MRI holds: (action kind, as named when placed, as named when held).
_HELD_REFERRALS = (("refer_physical_therapy", "PT", "PT"),
                   ("refer_vertebral_augmentation", "the augmentation referral", "any augmentation referral"))


def _indeterminate_mri_review(b: Builder, day: float) -> None:
    """Ask a clinician to look at an indeterminate MRI. Referrals made on an earlier MRI saying
    osteoporotic are named: they are open orders, and the clinician decides whether they go ahead."""
    taken = b.facts.taken
    placed = [(kind, name, taken[kind]) for kind, name, _ in _HELD_REFERRALS if kind in taken]
    held = [name for kind, _, name in _HELD_REFERRALS if kind not in taken]
    imaged, of = _imaged_level(b, day), _of_new_level(b, day)
    text = f"MRI on day {day:g}{of} is indeterminate: a pathologic fracture is not ruled out."
    if placed:
        text += (" Already referred on an earlier MRI saying osteoporotic: "
                 + " and ".join(f"{name} (day {when:g})" for _, name, when in placed)
                 + f"; review whether {'they go' if len(placed) > 1 else 'it goes'} ahead.")
    if held:
        text += f" {sentence(' and '.join(held))} {'stay' if len(held) > 1 else 'stays'} held until an MRI result " \
                "says osteoporotic."
    b.review(f"indeterminate_mri:{day:g}", "indeterminate_mri", day, text, mri_day=day,
             level=imaged or b.facts.enrollment.fracture_level,
             **({"referred": [kind for kind, _, _ in placed]} if placed else {}))


def imaging_text(b: Builder, kind: ActionKind, level: str) -> str:
    """The region an imaging order names, as a sentence (empty where the version is not level-aware)."""
    title = b.defn.order_for(kind, level)[0]
    return f" Order: {title} ({level})." if b.defn.region(kind, level) else ""
