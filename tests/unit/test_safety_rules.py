"""The clinical safety rules of guideline vcf-1.2 (docs/clinical-decisions.md, "Safety rules"):
both sides of every new threshold, and what each rule asks of the care team.

Expectations come from the safety review's rules, not from the code: a referral rests on current
evidence, pathology left open holds PT and augmentation, and what the pathway lets go is handed
to a clinician (``request_clinician_review`` with its reason).
"""

from __future__ import annotations

import pytest

from pathway.contract import parse_event
from pathway.decisions import escalation_state, next_due
from pathway.intake import clinical_rejection
from pathway.results import overdue_orders
from tests.unit.walk import Walk, confirmed


def reviews(w: Walk, reason: str):
    """The clinician-review requests of one reason."""
    return [a for a in w.of("request_clinician_review") if a.details["reason"] == reason]


def note_ids(w: Walk) -> list[str]:
    return [n.id for n in w.notes]


# --- §1 The 12-week review needs current evidence ----------------------------------------------------

@pytest.mark.parametrize("report_day, referred", [(69.9, False), (70, True), (83, True)])
def test_persistent_pain_counts_only_a_report_from_day_70(definition, report_day, referred):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.pain(report_day, 7)
    w.alarm(84)
    assert bool(w.of("refer_vertebral_augmentation")) is referred
    if not referred:
        (held,) = reviews(w, "review_evidence_missing")
        assert held.details["missing"] == ["recent_pain_report"] and held.day == 84
        assert "twelve_week_review:held" in note_ids(w)


def test_a_day_0_score_never_refers_and_a_missing_mri_holds_the_review(definition):
    w = Walk(definition, pain_nrs=8)  # lost to follow-up, MRI never resulted
    w.until(84)
    assert not w.of("refer_vertebral_augmentation")
    (held,) = reviews(w, "review_evidence_missing")
    assert held.details["missing"] == ["mri_result", "recent_pain_report"]
    assert "MRI not resulted" in held.rationale
    assert ("held: no MRI result saying osteoporotic and no pain report from day 70 on (MRI not resulted)"
            in held.rationale)
    w.until(150)
    assert len(reviews(w, "review_evidence_missing")) == 1  # once per review


def test_an_mri_alone_missing_holds_even_with_current_pain(definition):
    w = Walk(definition, pain_nrs=8)
    w.pain(80, 8)
    w.alarm(84)
    (held,) = reviews(w, "review_evidence_missing")
    assert held.details["missing"] == ["mri_result"] and not w.of("refer_vertebral_augmentation")
    w.event(95, type="mri", etiology="osteoporotic")
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == 95 and "decided on day 95" in ref.rationale and ref.details["criteria"] == ["persistent_pain"]


def test_another_criterion_needs_no_recent_pain_report(definition):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.event(50, type="pulmonary", dysfunction=True)
    w.alarm(84)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.details["criteria"] == ["pulmonary_dysfunction"] and not reviews(w, "review_evidence_missing")


@pytest.mark.parametrize("arrives, referred", [(182, True), (182.1, False)])
def test_a_held_review_is_decided_until_day_182(definition, arrives, referred):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.until(84)
    assert reviews(w, "review_evidence_missing")
    w.until(arrives)
    w.pain(arrives, 8)
    assert bool(w.of("refer_vertebral_augmentation")) is referred
    assert ("twelve_week_review:lapsed" in note_ids(w)) is not referred


def test_a_held_review_sets_a_timer_for_its_limit(definition):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.until(84)
    assert "held review limit" in [d.label for d in next_due(definition, w.facts, 84)]


def test_a_review_a_pause_held_counts_pain_only_from_the_days_before_it_resumed(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(60, 5)
    w.pain(75, 7)  # current at day 84, but the review waits for the pause to end
    w.clinician(76, "pause")
    w.clinician(150, "resume")
    assert not w.of("refer_vertebral_augmentation")  # a score from weeks ago never refers
    (held,) = reviews(w, "review_evidence_missing")
    assert held.day == 150 and held.details["missing"] == ["recent_pain_report"]
    assert "pain report from day 136 on" in held.rationale
    w.pain(151, 7)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == 151 and ref.details["latest_pain_nrs"] == 7


def test_a_pause_short_of_the_review_leaves_its_window_at_day_70(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.clinician(40, "pause")
    w.clinician(50, "resume")
    w.pain(70, 7)
    w.until(84.01)
    assert w.of("refer_vertebral_augmentation")[0].day == 84


@pytest.mark.parametrize("missing", [False, True])
def test_a_review_a_pause_kept_past_day_182_refers_no_one(definition, missing):
    w = Walk(definition, pain_nrs=6) if missing else confirmed(Walk(definition, pain_nrs=6))
    w.pain(70, 3)
    w.clinician(80, "pause")
    w.pain(199, 7)
    w.clinician(200, "resume")
    assert not w.of("refer_vertebral_augmentation") and "twelve_week_review:lapsed" in note_ids(w)
    (lapsed,) = [n for n in w.notes if n.id == "twelve_week_review:lapsed"]
    assert "reached only on day 200" in lapsed.text and "past day 182" in lapsed.text
    assert len(reviews(w, "review_evidence_missing")) == missing  # the care team is asked once, if anything is missing
    w.until(300)
    assert not w.of("refer_vertebral_augmentation")


# --- §2 Criteria found after the review ------------------------------------------------------------

@pytest.mark.parametrize("second, referred", [(113.9, False), (114, True)])
def test_two_persistent_reports_14_days_apart_refer_after_the_review(definition, second, referred):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(80, 3)
    w.alarm(84)
    assert not w.of("refer_vertebral_augmentation")
    w.pain(100, 6)
    w.pain(second, 5)
    found = w.of("refer_vertebral_augmentation")
    assert bool(found) is referred
    if referred:
        assert found[0].day == 114 and found[0].details["criteria"] == ["persistent_pain"]
        assert "after the 12-week review" in found[0].rationale


def test_a_report_below_the_threshold_between_restarts_the_count(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(80, 3)
    w.alarm(84)
    w.pain(100, 6)
    w.pain(107, 4)
    w.pain(115, 6)
    w.pain(128, 6)
    assert not w.of("refer_vertebral_augmentation")
    w.pain(129, 6)
    assert [a.day for a in w.of("refer_vertebral_augmentation")] == [129]


def test_a_deformity_found_after_the_review_refers_once(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(80, 4)
    w.at(84)
    w.event(86, type="radiograph", height_loss_pct=35, kyphosis_deg=20)
    (flag,) = w.of("flag_progressive_deformity")
    assert "until day 182" in flag.rationale
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == 86 and ref.details["criteria"] == ["spinal_deformity"]
    w.event(100, type="pulmonary", dysfunction=True)
    assert len(w.of("refer_vertebral_augmentation")) == 1


@pytest.mark.parametrize("day, referred", [(182, True), (182.5, False)])
def test_criteria_after_the_review_count_until_day_182(definition, day, referred):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(80, 4)
    w.at(84)
    w.event(day, type="pulmonary", dysfunction=True)
    assert bool(w.of("refer_vertebral_augmentation")) is referred


def test_a_declined_augmentation_stays_declined_after_the_review(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.clinician(60, "decline_augmentation")
    w.pain(80, 4)
    w.at(84)
    w.event(90, type="pulmonary", dysfunction=True)
    assert not w.of("refer_vertebral_augmentation") and "twelve_week_review:declined" in note_ids(w)


# --- §3, §4 Pathology unresolved holds PT; an indeterminate MRI asks a clinician --------------------

def test_pt_waits_for_the_osteoporotic_mri(definition):
    w = Walk(definition, pain_nrs=6)
    w.pain(8, 3)
    assert not w.of("refer_physical_therapy") and "refer_physical_therapy:held:mri" in note_ids(w)
    (held,) = [n for n in w.notes if n.id == "refer_physical_therapy:held:mri"]
    assert "(verify)" in held.citation  # the PT rules are local defaults
    w.event(15, type="mri", etiology="osteoporotic")
    (pt,) = w.of("refer_physical_therapy")
    assert pt.day == 15 and "NRS 3 on day 8" in pt.rationale


def test_an_open_neuro_deficit_holds_pt_until_a_report_says_no_deficit(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.event(5, type="neuro", deficit=True)
    w.pain(8, 3)
    assert not w.of("refer_physical_therapy") and "refer_physical_therapy:held:neuro" in note_ids(w)
    w.event(12, type="neuro", deficit=False)
    assert [a.day for a in w.of("refer_physical_therapy")] == [12]


def test_pt_held_for_the_mri_with_a_deficit_open_names_both_holds(definition):
    w = Walk(definition, pain_nrs=6)
    w.event(5, type="neuro", deficit=True)
    w.pain(8, 3)
    (held,) = [n for n in w.notes if n.id == "refer_physical_therapy:held:mri"]
    assert "until an MRI result says osteoporotic" in held.text and "neurological deficit is open" in held.text
    w.event(10, type="mri", etiology="osteoporotic")
    assert not w.of("refer_physical_therapy") and "refer_physical_therapy:held:neuro" in note_ids(w)


def test_an_indeterminate_mri_requests_review_and_holds_pt_and_augmentation(definition):
    w = Walk(definition, pain_nrs=6)
    w.event(6, type="mri", etiology="indeterminate")
    (review,) = reviews(w, "indeterminate_mri")
    assert review.day == 6 and "not ruled out" in review.rationale
    w.pain(10, 3)
    w.pain(80, 8)
    w.alarm(84)
    assert not w.of("refer_physical_therapy") and not w.of("refer_vertebral_augmentation")
    assert reviews(w, "review_evidence_missing")[0].details["missing"] == ["mri_result"]


def test_an_indeterminate_mri_after_an_osteoporotic_one_holds_again_until_one_says_osteoporotic(definition):
    w = confirmed(Walk(definition, pain_nrs=6), day=3)
    w.event(5, type="mri", etiology="indeterminate")
    w.pain(10, 3)
    assert not w.of("refer_physical_therapy") and "refer_physical_therapy:held:mri" in note_ids(w)
    w.pain(80, 8)
    w.until(84)
    assert not w.of("refer_vertebral_augmentation")
    assert reviews(w, "review_evidence_missing")[0].details["missing"] == ["mri_result"]
    w.event(90, type="mri", etiology="osteoporotic")
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == 90 and "MRI on day 90: osteoporotic" in ref.rationale


def test_an_indeterminate_mri_names_the_referrals_already_made_on_an_earlier_osteoporotic_one(definition):
    w = confirmed(Walk(definition, pain_nrs=6), day=3)
    w.pain(25, 3)
    w.pain(80, 7)
    w.until(84)
    assert w.of("refer_physical_therapy") and w.of("refer_vertebral_augmentation")
    w.event(90, type="mri", etiology="indeterminate")
    (review,) = reviews(w, "indeterminate_mri")
    assert "PT (day 25) and the augmentation referral (day 84); review whether they go ahead" in review.rationale
    assert "held" not in review.rationale
    assert review.details["referred"] == ["refer_physical_therapy", "refer_vertebral_augmentation"]


def test_an_indeterminate_mri_after_pt_names_pt_and_holds_the_augmentation_referral(definition):
    w = confirmed(Walk(definition, pain_nrs=6), day=3)
    w.pain(25, 3)
    w.event(40, type="mri", etiology="indeterminate")
    (review,) = reviews(w, "indeterminate_mri")
    assert "PT (day 25); review whether it goes ahead" in review.rationale
    assert "Any augmentation referral stays held until an MRI result says osteoporotic." in review.rationale
    assert review.details["referred"] == ["refer_physical_therapy"]


# --- §5 A neurological deficit makes the MRI urgent --------------------------------------------------

def test_a_later_deficit_asks_to_expedite_the_pending_mri(definition):
    w = Walk(definition)
    w.event(4, type="neuro", deficit=True)
    (ref,) = w.of("refer_urgent_spine_surgery")
    assert ref.details["expedite_mri"] is True and "Expedite the pending MRI" in ref.rationale


# --- §6, §7 Hand-overs ----------------------------------------------------------------------------------

def test_withdrawal_hands_the_open_orders_over(definition):
    w = Walk(definition)
    w.event(5, type="mri", etiology="osteoporotic")
    w.until(14)
    w.clinician(20, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    listed = {o["id"] for o in handover.details["open_orders"]}
    assert {"order_dxa", "order_radiograph:day-14", "prescribe_bisphosphonate", "start_calcitonin"} <= listed
    assert not {"order_mri", "stop_calcitonin"} & listed  # resulted; nothing is stopped (calcitonin runs on)
    assert handover.day == 20 and w.status == "withdrawn"


def test_pathologic_exit_asks_to_review_the_medications(definition):
    w = Walk(definition, pain_nrs=8)
    w.event(10, type="mri", etiology="malignant")
    (review,) = reviews(w, "pathologic_exit_medications")
    assert {"prescribe_bisphosphonate", "prescribe_opioid_short_course"} <= set(review.details["medications"])
    assert "Nothing is stopped automatically but calcitonin" in review.rationale


# --- §8 Opioid stewardship -----------------------------------------------------------------------------

def test_the_opioid_order_is_class_level_with_a_review_and_a_stop(definition):
    w = Walk(definition, pain_nrs=8)
    (opioid,) = w.of("prescribe_opioid_short_course")
    assert opioid.details["review_day"] == 7 and opioid.details["stop_by_day"] == 14
    assert "clinician chooses agent and dose" in opioid.details["agent"] and opioid.details["bowel_regimen"]
    assert "(verify)" in opioid.citation


@pytest.mark.parametrize("now, reviewed", [(6.9, False), (7, True)])
def test_the_opioid_course_is_reviewed_on_day_7(definition, now, reviewed):
    w = Walk(definition, pain_nrs=8)
    w.alarm(now)
    assert bool(reviews(w, "opioid_review")) is reviewed
    assert not reviews(Walk(definition, pain_nrs=6), "opioid_review")


def test_the_opioid_review_says_how_old_the_pain_score_is(definition):
    at_enrollment = Walk(definition, pain_nrs=8)
    at_enrollment.until(8)
    (review,) = reviews(at_enrollment, "opioid_review")
    assert "Latest pain NRS 8 (at enrollment)." in review.rationale and review.details["latest_pain_day"] == 0
    same_day = Walk(definition, pain_nrs=8)
    same_day.pain(0, 5)  # a report on the day of enrollment is a report, not the enrollment score
    same_day.until(8)
    assert "Latest pain NRS 5 (day 0)." in reviews(same_day, "opioid_review")[0].rationale
    reported = Walk(definition, pain_nrs=8)
    reported.pain(5, 4)
    reported.until(8)
    (review,) = reviews(reported, "opioid_review")
    assert "Latest pain NRS 4 (day 5)." in review.rationale and review.details["latest_pain_nrs"] == 4


# --- §9 The nerve-block offer expires -----------------------------------------------------------------

@pytest.mark.parametrize("day, accepted", [(42, True), (42.1, False)])
def test_the_offer_expires_at_day_42(definition, day, accepted):
    w = Walk(definition, pain_nrs=8)
    w.pain(9, 8)
    assert escalation_state(w.facts) == "awaiting_confirmation"
    event = parse_event({"type": "clinician", "decision": "confirm_nerve_block", "reason": "r", "author": "a"})
    reason = clinical_rejection(definition, w.facts, event, day)
    assert (reason is None) is accepted
    if not accepted:
        assert "expired" in reason


def test_the_expired_offer_is_noted_and_no_longer_awaited(definition):
    w = Walk(definition, pain_nrs=8)
    w.pain(9, 8)
    w.until(43)
    assert "offer_nerve_block:expired" in note_ids(w)
    assert escalation_state(w.facts) != "awaiting_confirmation"


# --- §10 Calcitonin and a cancer history ----------------------------------------------------------------

def test_no_calcitonin_with_a_cancer_history(definition):
    w = Walk(definition, red_flags=["history_of_cancer"])
    assert not w.of("start_calcitonin")
    assert "malignancy signal" in w.of("prescribe_first_line_analgesia")[0].rationale
    assert "calcitonin_not_started" in note_ids(w)
    too_old = Walk(definition, red_flags=["history_of_cancer"], onset_days_before_enrollment=10)
    (note,) = [n for n in too_old.notes if n.id == "calcitonin_not_started"]
    assert "10 days old > 5-day window" in note.text and "malignancy signal" in note.text  # every reason
    started = Walk(definition).of("start_calcitonin")[0]
    assert "EMA" in started.rationale and "FDA" in started.rationale


# --- §11 Side effects -------------------------------------------------------------------------------------

def test_each_side_effect_asks_a_clinician_and_stops_nothing(definition):
    w = Walk(definition)
    w.event(5, type="side_effect", drug="calcitonin", effect="dizziness, fell at home")
    w.event(9, type="side_effect", drug="ibuprofen", effect="black stools")
    first, second = reviews(w, "side_effect")
    assert (first.details["drug"], first.details["effect"]) == ("calcitonin", "dizziness, fell at home")
    assert second.details["drug"] == "ibuprofen" and not w.of("stop_calcitonin")
    assert ":" not in first.id.split("side_effect:")[1].replace(".", "")  # no free text in the id


def test_a_side_effect_review_cites_the_section_that_prescribed_the_drug(definition):
    w = Walk(definition)
    w.until(30)
    w.event(30, type="side_effect", drug="Calcitonin nasal spray", effect="dizziness")
    w.event(31, type="side_effect", drug="ibandronate", effect="heartburn")
    w.event(32, type="side_effect", drug="naproxen", effect="dyspepsia")
    calcitonin, ibandronate, naproxen = reviews(w, "side_effect")
    assert calcitonin.citation.startswith("Guideline: Initial Management / Pain Control")
    assert "Calcitonin was stopped on day 28." in calcitonin.rationale  # the course is over: the text says so
    assert ibandronate.citation.startswith(definition.actions["prescribe_bisphosphonate"].cite())
    assert "Osteoporosis" in ibandronate.citation and "stopped on day" not in ibandronate.rationale
    assert naproxen.citation.startswith(definition.actions["prescribe_first_line_analgesia"].cite())


def test_a_side_effect_of_a_drug_the_pathway_did_not_order_says_so(definition):
    w = Walk(definition, pain_nrs=5, red_flags=["history_of_cancer"])  # no calcitonin, no opioid course
    w.event(5, type="side_effect", drug="calcitonin", effect="nausea")
    w.event(6, type="side_effect", drug="oxycodone", effect="constipation")
    w.event(7, type="side_effect", drug="ibandronate", effect="heartburn")
    calcitonin, opioid, ibandronate = reviews(w, "side_effect")
    assert "The pathway did not order calcitonin." in calcitonin.rationale
    assert "The pathway did not order an opioid." in opioid.rationale
    assert "did not order" not in ibandronate.rationale  # prescribed at enrollment


@pytest.mark.parametrize("drug, kind", [
    ("Fosamax", "prescribe_bisphosphonate"), ("zoledronic acid", "prescribe_bisphosphonate"),
    ("vitamin D3", "prescribe_calcium_vitamin_d"), ("calcium citrate", "prescribe_calcium_vitamin_d"),
    ("amlodipine (calcium channel blocker)", "prescribe_first_line_analgesia"),
    ("calcium-channel blocker", "prescribe_first_line_analgesia"), ("dronabinol", "prescribe_first_line_analgesia"),
    ("hydromorphone", "prescribe_opioid_short_course"), ("Miacalcin", "start_calcitonin"),
])
def test_a_side_effect_names_the_order_of_its_drug_by_name(drug, kind):
    from pathway.responses import prescribed_by

    assert prescribed_by(drug) == kind


# --- §12 One task per need ------------------------------------------------------------------------------------

def test_radiographs_due_together_after_a_pause_are_one_order(definition):
    w = Walk(definition)
    w.clinician(10, "pause")
    w.clinician(50, "resume")
    (film,) = w.of("order_radiograph")
    assert film.details["scheduled_days"] == [14, 42] and film.day == 50
    w.until(84)
    assert [a.details["scheduled_day"] for a in w.of("order_radiograph")] == [42, 84]


@pytest.mark.parametrize("flare_day, skipped", [(122, True), (121.9, False)])
def test_a_screening_within_60_days_after_a_flare_screening_is_skipped(definition, flare_day, skipped):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(20, 2)
    w.pain(80, 2)
    w.pain(flare_day, 6)
    w.pain(flare_day + 1, 2)
    w.until(182)
    scheduled = [a for a in w.of("order_adjacent_fracture_screening") if a.details["trigger"] == "schedule"]
    assert bool(scheduled) is not skipped
    assert ("order_adjacent_fracture_screening:day-182:skipped" in note_ids(w)) is skipped


def test_a_flare_reported_on_the_scheduled_day_is_the_one_screening(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(20, 2)
    w.pain(100, 2)
    w.until(181)
    w.pain(182, 6)  # at the screening's instant: the flare comes first, and orders its own
    w.until(182)
    assert [a.id for a in w.of("order_adjacent_fracture_screening")] == ["order_adjacent_fracture_screening:flare:182"]
    assert "order_adjacent_fracture_screening:day-182:skipped" in note_ids(w)


@pytest.mark.parametrize("revision, flare_day, screenings", [
    (3, 182.125, ["day-182"]),  # three hours after the scheduled screening was ordered: that one covers it
    (3, 183, ["day-182", "flare:183"]),  # the next day: a screening of its own
    (2, 182.125, ["day-182", "flare:182.125"]),
])  # fmt: skip
def test_a_flare_just_after_the_scheduled_screening_is_covered_by_it(definition, revision, flare_day, screenings):
    w = confirmed(Walk(definition, pain_nrs=6, revision=revision))
    w.pain(20, 2)
    w.pain(100, 2)
    w.until(182.1)
    w.pain(flare_day, 6)
    prefix = "order_adjacent_fracture_screening:"
    assert [a.id.removeprefix(prefix) for a in w.of("order_adjacent_fracture_screening")] == screenings
    covered = [n for n in w.notes if n.id == f"{prefix}flare:{flare_day:g}:covered"]
    assert bool(covered) is (screenings == ["day-182"])
    if covered:
        assert "ordered on day 182 still waits for its result: no second screening" in covered[0].text


def test_a_skipped_screening_stays_skipped_once_the_flare_window_has_passed(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(20, 2)
    w.pain(80, 2)
    w.pain(130, 6)
    w.pain(131, 2)
    w.until(182)
    assert "order_adjacent_fracture_screening:day-182:skipped" in note_ids(w)
    w.until(250)  # past the flare's 60 days: the skipped screening is not ordered after all
    assert not [a for a in w.of("order_adjacent_fracture_screening") if a.details["trigger"] == "schedule"]


def test_a_skipped_screening_still_lets_the_pathway_complete(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    for day in range(10, 365, 12):
        w.pain(day, 2 if day != 310 else 6)
    w.until(365)
    assert w.status == "completed" and "order_adjacent_fracture_screening:day-365:skipped" in note_ids(w)


# --- §13 Urgent results escalate sooner --------------------------------------------------------------

@pytest.mark.parametrize("flags, limit", [(["history_of_cancer"], 3), (["neuro_deficit"], 3), ([], 14)])
def test_an_urgent_mri_is_overdue_after_3_days_a_routine_one_after_14(definition, flags, limit):
    w = Walk(definition, red_flags=flags)
    assert "order_mri" not in [o.order.action_id for o in overdue_orders(definition, w.facts, limit)]
    assert "order_mri" in [o.order.action_id for o in overdue_orders(definition, w.facts, limit + 0.01)]


# --- §14 Words ---------------------------------------------------------------------------------------------

def test_presumed_osteoporotic_until_the_mri_says_so(definition):
    w = Walk(definition, pain_nrs=8)
    for kind in ("prescribe_first_line_analgesia", "prescribe_calcium_vitamin_d", "prescribe_bisphosphonate"):
        assert "presumed osteoporotic (MRI pending)" in w.of(kind)[0].rationale.lower().replace("(mri", "(MRI")
        assert "(MRI pending)" in w.of(kind)[0].rationale  # as written, where the text opens with it too
    w.event(5, type="mri", etiology="osteoporotic")
    w.pain(80, 7)
    w.alarm(84)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert "MRI on day 5: osteoporotic" in ref.rationale and "presumed" not in ref.rationale


def test_the_referral_quotes_the_evidence_as_the_review_gives_it(definition):
    w = confirmed(Walk(definition, pain_nrs=8, height_loss_pct=22))
    w.pain(80, 7)
    w.alarm(84)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert "53% of screened patients improved without augmentation" in ref.rationale
    assert "AAOS 2010: strong recommendation against vertebroplasty" in ref.rationale
    assert ref.details["suggested_procedure"] == "vertebroplasty"
    assert "makes a strong recommendation against vertebroplasty" in ref.rationale


@pytest.mark.parametrize("kind", ["offer_nerve_block", "refer_physical_therapy", "order_radiograph",
                                  "outreach_missed_follow_up"])
def test_citations_of_rules_marked_verify_say_so(definition, kind):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.pain(9, 8)
    w.pain(20, 3)
    w.until(40)
    assert "(verify)" in w.of(kind)[0].citation
    assert "(verify)" not in w.of("order_dxa")[0].citation


# --- Findings of the documentation review --------------------------------------------------------------

def test_pt_after_the_hold_needs_pain_still_subsided(definition):
    w = Walk(definition, pain_nrs=6)
    w.pain(8, 3)
    w.pain(20, 8)
    w.event(30, type="mri", etiology="osteoporotic")
    assert not w.of("refer_physical_therapy") and "refer_physical_therapy:held:pain" in note_ids(w)
    w.pain(35, 4)
    (pt,) = w.of("refer_physical_therapy")
    assert pt.day == 35 and "NRS 4 on day 35" in pt.rationale


def test_a_deficit_reported_later_makes_the_pending_mri_urgent_for_the_overdue_clock(definition):
    v = Walk(definition)
    v.event(10, type="neuro", deficit=True)
    late = [o for o in overdue_orders(definition, v.facts, 13.01) if o.order.action_id == "order_mri"]
    assert late and late[0].since == 10 and late[0].rule.value == 3
    assert not [o for o in overdue_orders(definition, v.facts, 12.9) if o.order.action_id == "order_mri"]


def test_a_flare_screening_during_a_pause_skips_the_screening_ordered_on_resume(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(20, 2)
    w.pain(80, 2)
    w.until(84)
    w.clinician(150, "pause")
    w.pain(190, 6)
    w.clinician(200, "resume")
    assert [a.details["trigger"] for a in w.of("order_adjacent_fracture_screening")] == ["pain_flare"]
    assert "order_adjacent_fracture_screening:day-182:skipped" in note_ids(w)


def test_the_handover_lists_orders_not_advice_or_tasks(definition):
    w = Walk(definition, pain_nrs=8)
    w.pain(9, 8)
    w.event(10, type="side_effect", drug="ibuprofen", effect="nausea")
    w.clinician(12, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    kinds = {o["kind"] for o in handover.details["open_orders"]}
    assert {"order_mri", "order_dxa", "prescribe_bisphosphonate", "prescribe_opioid_short_course",
            "start_calcitonin"} <= kinds
    assert not {"advise_early_mobilization", "offer_brace", "offer_nerve_block", "request_clinician_review",
                "stop_calcitonin"} & kinds


def test_a_clinician_review_cites_the_guideline_section_it_is_about(definition):
    from pathway.builder import REVIEWED_STEP
    from pathway.plan_steps import REVIEW_REASONS

    assert set(REVIEWED_STEP) == set(REVIEW_REASONS)  # every reason has its section
    w = Walk(definition, pain_nrs=8)  # the opioid course, reviewed on day 7
    w.event(5, type="mri", etiology="indeterminate")
    w.until(8)
    (opioid,) = reviews(w, "opioid_review")
    assert opioid.citation.startswith("Guideline: Initial Management / Pain Control; Safety rules")
    (mri,) = reviews(w, "indeterminate_mri")
    assert mri.citation.startswith("Guideline: Important Clinical Pitfalls / Ruling out pathologic fracture (ref. 3);")
    assert opioid.citation.endswith(f"[guideline {definition.version}]")


# --- Revision 1: pathways that started their run before the fixes keep the decisions they replay with ---

def test_revision_1_keeps_the_first_osteoporotic_mri(definition):
    w = confirmed(Walk(definition, revision=1, pain_nrs=6), day=3)
    w.event(5, type="mri", etiology="indeterminate")
    w.pain(10, 3)
    assert w.of("refer_physical_therapy")[0].day == 10


def test_revision_1_counts_pain_from_day_70_whatever_held_the_review(definition):
    w = confirmed(Walk(definition, revision=1, pain_nrs=6))
    w.pain(75, 7)
    w.clinician(76, "pause")
    w.clinician(150, "resume")
    assert w.of("refer_vertebral_augmentation")[0].day == 150
    late = confirmed(Walk(definition, revision=1, pain_nrs=6))
    late.pain(70, 3)
    late.clinician(80, "pause")
    late.pain(199, 7)
    late.clinician(200, "resume")
    assert late.of("refer_vertebral_augmentation")[0].day == 200


def test_revision_1_orders_both_screenings_on_a_flare_on_the_scheduled_day(definition):
    w = confirmed(Walk(definition, revision=1, pain_nrs=6))
    w.pain(20, 2)
    w.pain(100, 2)
    w.until(181)
    w.pain(182, 6)
    assert len(w.of("order_adjacent_fracture_screening")) == 2
