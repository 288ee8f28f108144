"""Pure unit tests of pathway/decisions.py: both sides of every threshold and timing.

Expectations come from docs/clinical-decisions.md and docs/contract.md, not from the code.
A ``Walk`` (``tests/unit/walk.py``) plays the workflow's loop by hand: decide, record what was
taken and noted, add observations, decide again later.
"""

from __future__ import annotations

import pytest

from pathway.contract import ACTION_KINDS, Action, parse_event
from pathway.decisions import (
    decide,
    escalation_state,
    next_due,
    next_scheduled_step,
    phase,
    review_criteria,
)
from pathway.facts import GRACE, PatientFacts, genant_grade
from pathway.intake import clinical_rejection
from tests.unit.walk import Walk, confirmed, enrollment

ENROLLMENT_KINDS = [
    "prescribe_first_line_analgesia", "start_calcitonin", "advise_early_mobilization", "offer_brace",
    "prescribe_calcium_vitamin_d", "prescribe_bisphosphonate", "order_dxa", "order_mri",
]  # fmt: skip
JUST_AFTER = 0.01  # 14.4 minutes past a boundary: "more than N days" has passed


def section(definition, kind: str) -> str:
    return definition.actions[kind].section


def assert_cited(definition, action: Action) -> None:
    """The citation names the action's guideline section and the guideline version."""
    assert action.citation.startswith("Guideline: ")
    assert section(definition, action.kind) in action.citation
    assert definition.version in action.citation


# --- Enrollment -----------------------------------------------------------------------------------

def test_enrollment_orders_the_first_line_bundle_at_day_0(definition):
    w = Walk(definition)
    assert w.kinds() == ENROLLMENT_KINDS
    assert all(a.day == 0 for a in w.actions)
    for action in w.actions:
        assert_cited(definition, action)
        assert action.rationale
    assert w.status == "running"


@pytest.mark.parametrize("nrs, opioid", [(0, False), (6, False), (7, True), (10, True)])
def test_opioid_only_for_severe_pain_at_enrollment(definition, nrs, opioid):
    w = Walk(definition, pain_nrs=nrs)
    found = w.of("prescribe_opioid_short_course")
    assert bool(found) is opioid
    if opioid:
        assert f"NRS {nrs}" in found[0].rationale and ">= severe-pain threshold 7" in found[0].rationale
        assert "Pain Control" in found[0].citation and found[0].day == 0


def test_severe_pain_after_enrollment_never_adds_an_opioid(definition):
    w = Walk(definition, pain_nrs=5)
    w.pain(3, 9)
    w.until(60)
    assert not w.of("prescribe_opioid_short_course")


@pytest.mark.parametrize("age, started", [(0, True), (5, True), (6, False), (30, False)])
def test_calcitonin_only_for_a_fracture_at_most_5_days_old(definition, age, started):
    w = Walk(definition, onset_days_before_enrollment=age)
    assert bool(w.of("start_calcitonin")) is started
    if started:
        action = w.of("start_calcitonin")[0]
        assert f"{age} day(s) old <= 5" in action.rationale
        assert action.details["dose"] == "200 IU daily"
        assert_cited(definition, action)
    else:
        (note,) = [n for n in w.notes if n.id == "calcitonin_not_started"]
        assert f"{age} days old > 5" in note.text and "Pain Control" in note.citation
        # ... and the enrollment's analgesia says so too, where every reader of the actions sees it
        assert f"Calcitonin not started: fracture {age} days old" in w.of("prescribe_first_line_analgesia")[0].rationale


@pytest.mark.parametrize("now, stopped", [(27.9, False), (28, True), (40, True)])
def test_calcitonin_hard_stop_at_day_28(definition, now, stopped):
    w = Walk(definition)
    w.alarm(now)
    found = w.of("stop_calcitonin")
    assert bool(found) is stopped
    if stopped:
        assert found[0].day == now and "28-day course complete (hard stop) (short-term use only)" in found[0].rationale
        assert_cited(definition, found[0])


def test_calcitonin_never_started_is_never_stopped(definition):
    w = Walk(definition, onset_days_before_enrollment=10)
    w.until(365)
    assert not w.of("start_calcitonin") and not w.of("stop_calcitonin")


@pytest.mark.parametrize("flag", ["history_of_cancer", "fever_or_infection", "unexplained_weight_loss"])
def test_red_flag_makes_the_mri_urgent(definition, flag):
    w = Walk(definition, red_flags=[flag])
    (mri,) = w.of("order_mri")
    assert mri.details["priority"] == "urgent" and mri.details["red_flags"] == [flag]
    assert flag in mri.rationale and "Ruling out pathologic fracture" in mri.citation
    assert not w.of("refer_urgent_spine_surgery")


def test_without_red_flags_the_mri_is_routine(definition):
    (mri,) = Walk(definition).of("order_mri")
    assert mri.details["priority"] == "routine" and mri.details["level"] == "L2"


def test_neuro_deficit_red_flag_refers_to_spine_surgery_at_once(definition, definition_v1_1):
    w = Walk(definition, red_flags=["neuro_deficit"])
    (referral,) = w.of("refer_urgent_spine_surgery")
    assert referral.day == 0 and "neuro_deficit red flag" in referral.rationale.lower()
    assert w.of("order_mri")[0].details["priority"] == "urgent"  # the enrollment MRI is urgent too
    assert w.status == "running"
    assert Walk(definition_v1_1, red_flags=["neuro_deficit"]).of("order_mri")[0].details["priority"] == "routine"


# --- Nerve block ----------------------------------------------------------------------------------

@pytest.mark.parametrize("day, nrs, offered", [
    (6.9, 7, False), (7, 7, True), (20, 6, False), (20, 7, True), (20, 10, True), (42, 7, True), (42.1, 7, False),
])  # fmt: skip
def test_nerve_block_offer_window_and_threshold(definition, day, nrs, offered):
    w = Walk(definition, pain_nrs=8)
    w.pain(day, nrs)
    found = w.of("offer_nerve_block")
    assert bool(found) is offered
    if offered:
        offer = found[0]
        assert offer.day == day and f"NRS {nrs} on day {day:g} >= 7" in offer.rationale
        assert "days 7–42" in offer.rationale and offer.details["needs_confirmation"] is True
        assert "Nerve Block Option" in offer.citation and "ref. 2" in offer.citation


def test_nerve_block_is_offered_once_and_never_at_enrollment(definition):
    w = Walk(definition, pain_nrs=10)
    assert not w.of("offer_nerve_block")
    w.pain(8, 8)
    w.pain(15, 9)
    w.pain(30, 8)
    assert [a.day for a in w.of("offer_nerve_block")] == [8]


def test_nerve_block_confirmation_needs_an_offer_and_counts_once(definition):
    w = Walk(definition, pain_nrs=8)
    w.clinician(5, "confirm_nerve_block")
    assert w.rejected == ["decision: no nerve-block offer to confirm"]
    w.pain(9, 8)
    assert escalation_state(w.facts) == "awaiting_confirmation"
    w.clinician(10, "confirm_nerve_block")
    assert any(n.id.startswith("nerve_block_confirmed") for n in w.notes)
    assert escalation_state(w.facts) == "none"
    w.clinician(11, "confirm_nerve_block")
    assert w.rejected[-1] == "decision: the nerve block is already confirmed"


# --- Physical therapy -----------------------------------------------------------------------------

@pytest.mark.parametrize("day, nrs, referred", [
    (6.9, 4, False), (7, 4, True), (7, 5, False), (30, 0, True), (30, 5, False),
])  # fmt: skip
def test_physical_therapy_once_acute_pain_subsides(definition, day, nrs, referred):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.pain(day, nrs)
    found = w.of("refer_physical_therapy")
    assert bool(found) is referred
    if referred:
        assert found[0].day == day and f"NRS {nrs} on day {day:g} <= 4" in found[0].rationale
        assert "Physical Therapy" in found[0].citation


def test_physical_therapy_never_from_day_0(definition):
    w = Walk(definition, pain_nrs=1)
    w.pain(0, 1)
    w.pain(3, 2)
    w.at(10)
    assert not w.of("refer_physical_therapy")


def test_physical_therapy_on_the_first_qualifying_report_only(definition):
    w = confirmed(Walk(definition, pain_nrs=8), day=2)
    w.pain(3, 2)
    w.pain(8, 6)
    w.pain(12, 3)
    w.pain(20, 1)
    assert [a.day for a in w.of("refer_physical_therapy")] == [12]


# --- Radiographs and screening on schedule ----------------------------------------------------------

@pytest.mark.parametrize("due, week", [(14, 2), (42, 6), (84, 12)])
def test_radiographs_at_weeks_2_6_12(definition, due, week):
    w = Walk(definition)
    w.alarm(due - 0.1)
    assert not [a for a in w.of("order_radiograph") if a.details["scheduled_day"] == due]
    w.alarm(due)
    (order,) = [a for a in w.of("order_radiograph") if a.details["scheduled_day"] == due]
    assert order.details["week"] == week and f"week {week}" in order.rationale
    assert "Monitoring and Follow-up" in order.citation


@pytest.mark.parametrize("due", [182, 365])
def test_adjacent_fracture_screening_at_6_and_12_months(definition, due):
    w = Walk(definition)
    w.until(due - 0.1)  # every alarm before it rings (the 6-month screening on its day)
    assert not [a for a in w.of("order_adjacent_fracture_screening") if a.details.get("scheduled_day") == due]
    w.alarm(due)
    (order,) = [a for a in w.of("order_adjacent_fracture_screening") if a.details.get("scheduled_day") == due]
    assert order.details["trigger"] == "schedule" and f"day {due}" in order.rationale
    assert "adjacent level fractures" in order.citation


# --- Twelve-week review -----------------------------------------------------------------------------

@pytest.mark.parametrize("latest, referred", [(3, False), (4, False), (5, True), (9, True)])
def test_persistent_pain_at_the_review(definition, latest, referred):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.pain(70, latest)
    w.alarm(84)
    found = w.of("refer_vertebral_augmentation")
    assert bool(found) is referred
    if referred:
        ref = found[0]
        assert ref.day == 84 and ref.details["criteria"] == ["persistent_pain"]
        assert f"latest pain NRS {latest} (day 70) >= 5" in ref.rationale
        assert "If Pain Persists After 3 Months" in ref.citation and "ref. 1" in ref.citation
        for caveat in ("VERTOS II", "VERTOS IV", "AAOS", "not an order"):
            assert caveat in ref.rationale
    else:
        (note,) = [n for n in w.notes if n.id == "twelve_week_review:done"]
        assert "no criterion met" in note.text and ("resolved" in note.text) is (latest <= 3)


def test_no_review_before_day_84(definition):
    w = Walk(definition, pain_nrs=9)
    w.pain(80, 9)
    w.at(83.9)
    assert not w.of("refer_vertebral_augmentation")
    assert not [n for n in w.notes if n.id.startswith("twelve_week_review")]


def test_review_reads_the_latest_report_not_the_worst(definition):
    w = Walk(definition, pain_nrs=9)
    w.pain(30, 8)
    w.pain(80, 3)
    w.at(84)
    assert not w.of("refer_vertebral_augmentation")


def test_pulmonary_dysfunction_is_a_referral_criterion(definition):
    w = confirmed(Walk(definition, pain_nrs=8, height_loss_pct=22))
    w.event(50, type="pulmonary", dysfunction=True)
    w.pain(80, 2)
    w.alarm(84)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.details["criteria"] == ["pulmonary_dysfunction"]
    assert ref.details["suggested_procedure"] == "vertebroplasty"


def test_pulmonary_dysfunction_resolved_is_not_a_criterion(definition):
    w = Walk(definition, pain_nrs=8)
    w.event(50, type="pulmonary", dysfunction=True)
    w.event(60, type="pulmonary", dysfunction=False)
    w.pain(80, 2)
    w.at(84)
    assert not w.of("refer_vertebral_augmentation")


def test_declined_augmentation_is_not_referred(definition):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.clinician(60, "decline_augmentation")
    w.pain(80, 8)
    w.alarm(84)
    assert not w.of("refer_vertebral_augmentation")
    assert any(n.id == "twelve_week_review:declined" for n in w.notes)
    w.clinician(90, "decline_augmentation")
    assert w.rejected == ["decision: augmentation is already declined"]


def test_review_happens_once(definition):
    w = Walk(definition, pain_nrs=8)
    w.pain(80, 2)
    w.at(84)
    w.pain(90, 9)
    w.at(100)
    assert not w.of("refer_vertebral_augmentation")


# --- Genant grade and suggested procedure ---------------------------------------------------------

@pytest.mark.parametrize("pct, grade", [
    (0, 0), (19.9, 0), (20, 1), (24.9, 1), (25, 2), (39.9, 2), (40, 3), (100, 3),
])  # fmt: skip
def test_genant_grade_boundaries(definition, pct, grade):
    assert genant_grade(definition, pct) == grade


@pytest.mark.parametrize("pct, grade, procedure", [
    (19.9, 0, "vertebroplasty"), (20, 1, "vertebroplasty"), (24.9, 1, "vertebroplasty"),
    (25, 2, "balloon_kyphoplasty"), (39.9, 2, "balloon_kyphoplasty"), (40, 3, "balloon_kyphoplasty"),
])  # fmt: skip
def test_suggested_procedure_follows_the_grade(definition, pct, grade, procedure):
    w = confirmed(Walk(definition, pain_nrs=7, height_loss_pct=pct))
    w.pain(80, 6)
    w.alarm(84)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.details["suggested_procedure"] == procedure and ref.details["genant_grade"] == grade
    assert procedure.replace("balloon_", "balloon ") in ref.rationale
    assert f"Genant grade {grade}" in ref.rationale


def test_progressive_deformity_suggests_kyphoplasty_whatever_the_grade(definition):
    w = confirmed(Walk(definition, pain_nrs=7, height_loss_pct=15))
    w.event(42, type="radiograph", height_loss_pct=18)
    w.pain(80, 2)
    w.alarm(84)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.details["criteria"] == ["spinal_deformity"] and ref.details["genant_grade"] == 0
    assert ref.details["suggested_procedure"] == "balloon_kyphoplasty"


def test_the_grade_comes_from_the_latest_image(definition):
    w = confirmed(Walk(definition, pain_nrs=7, height_loss_pct=24))
    w.event(42, type="radiograph", height_loss_pct=25)
    w.pain(80, 6)
    w.alarm(84)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.details["genant_grade"] == 2 and ref.details["suggested_procedure"] == "balloon_kyphoplasty"
    assert ref.details["criteria"] == ["persistent_pain"]


# --- Progressive deformity ----------------------------------------------------------------------------

@pytest.mark.parametrize("first, later, flagged", [
    (25, 29.9, False), (25, 30, True), (25, 25, False), (25, 20, False),
    (17, 20.3, False), (17, 20.4, True), (22, 26.4, True), (35, 42, True), (10, 12, True),
])  # fmt: skip
def test_progression_is_a_20_percent_relative_rise_in_height_loss(definition, first, later, flagged):
    w = Walk(definition, height_loss_pct=first)
    w.event(42.5, type="radiograph", height_loss_pct=later)
    found = w.of("flag_progressive_deformity")
    assert bool(found) is flagged
    if flagged:
        assert found[0].day == 42.5
        assert f"height loss {later:g}% vs {first:g}% at enrollment" in found[0].rationale
        assert "Evaluate for progressive deformity" in found[0].citation
        assert "spinal_deformity" in review_criteria(definition, w.facts)[0]
    else:
        assert "spinal_deformity" not in review_criteria(definition, w.facts)[0]


@pytest.mark.parametrize("first, later, flagged", [
    (10, 14.9, False), (10, 15, True), (7.2, 12.2, True), (7.2, 12.1, False), (30, 20, False),
])  # fmt: skip
def test_progression_of_kyphosis_by_5_degrees(definition, first, later, flagged):
    w = Walk(definition, height_loss_pct=25)
    w.event(14.5, type="radiograph", height_loss_pct=25)
    w.event(15, type="radiograph", height_loss_pct=25, kyphosis_deg=first)
    w.event(42.5, type="radiograph", height_loss_pct=26, kyphosis_deg=later)
    found = w.of("flag_progressive_deformity")
    assert bool(found) is flagged
    if flagged:
        assert found[0].day == 42.5 and f"kyphosis {later:g}° vs {first:g}°" in found[0].rationale


def test_progressive_deformity_is_flagged_once(definition):
    w = Walk(definition, height_loss_pct=25)
    w.event(15, type="radiograph", height_loss_pct=30)
    w.event(43, type="radiograph", height_loss_pct=35)
    assert [a.day for a in w.of("flag_progressive_deformity")] == [15]


# --- New fracture level ---------------------------------------------------------------------------------

def test_new_fracture_level_is_flagged_and_imaged_once(definition):
    w = Walk(definition)
    w.event(15, type="radiograph", height_loss_pct=25, new_fracture_level="L1")
    w.event(43, type="radiograph", height_loss_pct=25, new_fracture_level="L1")
    (flag,) = w.of("flag_new_vertebral_fracture")
    assert flag.day == 15 and "new fracture at L1" in flag.rationale and flag.details["level"] == "L1"
    assert "adjacent level fractures" in flag.citation
    mris = w.of("order_mri")
    assert len(mris) == 2 and mris[1].details["level"] == "L1" and mris[1].day == 15
    w.event(50, type="radiograph", height_loss_pct=25, new_fracture_level="T12")
    assert [a.details["level"] for a in w.of("flag_new_vertebral_fracture")] == ["L1", "T12"]


def test_the_enrolled_level_is_not_a_new_fracture_but_the_film_still_counts(definition):
    w = Walk(definition)
    event = parse_event({"type": "radiograph", "height_loss_pct": 35, "new_fracture_level": "L2"})
    assert clinical_rejection(definition, w.facts, event, 20) is None
    w.event(20, type="radiograph", height_loss_pct=35, new_fracture_level="L2")
    assert not w.of("flag_new_vertebral_fracture") and len(w.of("order_mri")) == 1
    assert [a.day for a in w.of("flag_progressive_deformity")] == [20]


# --- Pain flare -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("low, flare_nrs, flagged", [
    (4, 6, False), (4, 7, True), (5, 8, False), (5, 10, False), (2, 5, True), (0, 2, False),
])  # fmt: skip
def test_pain_flare_orders_adjacent_fracture_screening(definition, low, flare_nrs, flagged):
    w = Walk(definition, pain_nrs=8)
    w.pain(50, low)
    w.pain(60, flare_nrs)
    found = [a for a in w.of("order_adjacent_fracture_screening") if a.details["trigger"] == "pain_flare"]
    assert bool(found) is flagged
    if flagged:
        assert found[0].day == 60
        assert f"NRS {flare_nrs} on day 60 is >= 3 above the lowest score {low} (<= 4)" in found[0].rationale
        assert "adjacent level fractures" in found[0].citation


def test_the_enrollment_score_counts_as_the_lowest(definition):
    w = Walk(definition, pain_nrs=3)
    w.pain(50, 6)
    assert [a.day for a in w.of("order_adjacent_fracture_screening")] == [50]


FLARES = [(50, 3), (55, 7), (60, 8), (65, 3), (70, 7)]  # a flare on day 55, settled by 65, another on 70


def test_one_screening_per_flare(definition):
    w = Walk(definition, pain_nrs=8)
    w.pain(50, 3)
    w.event(54, type="radiograph", height_loss_pct=25)  # the week-6 film: no screening waits
    w.pain(55, 7)
    w.event(58, type="radiograph", height_loss_pct=25)  # the flare's screening is taken
    for day, nrs in FLARES[2:]:
        w.pain(day, nrs)
    assert [a.day for a in w.of("order_adjacent_fracture_screening")] == [55, 70]


@pytest.mark.parametrize("revision, screenings", [(5, [55, 70]), (6, [55]), (8, [55]), (9, [55, 70])])
def test_a_flare_while_a_screening_waits_for_its_film_orders_its_own(definition, revision, screenings):
    """A flare orders its screening at once (the contract), also while the last flare's screening still
    waits for its film. Revisions 6 to 8 read that film as covering it (a note, no order): the care team
    heard of the new flare only in a note."""
    w = Walk(definition, pain_nrs=8, revision=revision)
    for day, nrs in FLARES:
        w.pain(day, nrs)
    assert [a.day for a in w.of("order_adjacent_fracture_screening")] == screenings
    covered = [n for n in w.notes if n.id == "order_adjacent_fracture_screening:flare:70:covered"]
    assert len(covered) == (len(screenings) == 1)
    if covered:
        assert "(verify)" in covered[0].citation  # it rests on the flare rules and the skip window, local defaults


# --- Prolonged immobilization ----------------------------------------------------------------------------

@pytest.mark.parametrize("now, alerted", [(16.9, False), (17, False), (17 + JUST_AFTER, True)])
def test_bed_bound_more_than_7_days(definition, now, alerted):
    w = Walk(definition)
    w.event(10, type="mobility", bed_bound=True)
    w.at(now)
    found = w.of("alert_prolonged_immobilization")
    assert bool(found) is alerted
    if alerted:
        assert "Bed-bound since day 10: more than 7 days" in found[0].rationale
        assert "Avoiding prolonged immobilization" in found[0].citation


def test_a_spell_of_exactly_7_days_raises_nothing(definition):
    w = Walk(definition)
    w.event(10, type="mobility", bed_bound=True)
    w.event(17, type="mobility", bed_bound=False)
    w.until(30)
    assert not w.of("alert_prolonged_immobilization")


def test_one_immobilization_alert_per_spell(definition):
    w = Walk(definition)
    w.event(10, type="mobility", bed_bound=True)
    w.event(12, type="mobility", bed_bound=True)
    w.until(25)
    w.event(26, type="mobility", bed_bound=False)
    w.event(30, type="mobility", bed_bound=True)
    w.until(40)
    assert [a.details["bed_bound_since"] for a in w.of("alert_prolonged_immobilization")] == [10, 30]


def test_immobilization_check_is_due_just_after_7_days(definition):
    w = Walk(definition)
    w.event(10, type="mobility", bed_bound=True)
    assert 17 + GRACE in [d.day for d in next_due(definition, w.facts, 10)]


# --- Lost to follow-up --------------------------------------------------------------------------------------

@pytest.mark.parametrize("now, expected", [
    (14, []), (14 + JUST_AFTER, ["outreach_missed_follow_up"]), (28, ["outreach_missed_follow_up"]),
    (28 + JUST_AFTER, ["outreach_missed_follow_up", "escalate_lost_to_follow_up"]),
])  # fmt: skip
def test_outreach_after_14_and_escalation_after_28_days(definition, now, expected):
    w = Walk(definition, onset_days_before_enrollment=10)
    w.at(now)
    gaps = [a for a in w.actions if a.kind in ("outreach_missed_follow_up", "escalate_lost_to_follow_up")]
    assert [a.kind for a in gaps] == expected
    for action in gaps:
        assert "No pain report since day 0" in action.rationale and "Monitoring and Follow-up" in action.citation
    assert escalation_state(w.facts) == {0: "none", 1: "outreach", 2: "lost_to_follow_up"}[len(expected)]


def test_a_report_exactly_at_14_days_is_in_time(definition):
    w = Walk(definition)
    w.pain(14, 5)
    w.at(14 + JUST_AFTER)
    assert not w.of("outreach_missed_follow_up")
    w.at(28)
    assert not w.of("outreach_missed_follow_up")
    w.at(28 + JUST_AFTER)
    assert [a.details["last_contact_day"] for a in w.of("outreach_missed_follow_up")] == [14]


def test_outreach_once_per_gap_and_reset_by_a_new_report(definition):
    w = Walk(definition)
    for now in (15, 16, 20):
        w.at(now)
    assert len(w.of("outreach_missed_follow_up")) == 1
    w.pain(20, 5)
    w.at(34)
    assert len(w.of("outreach_missed_follow_up")) == 1
    assert escalation_state(w.facts) == "none"
    w.at(34 + JUST_AFTER)
    w.at(40)
    assert [a.details["last_contact_day"] for a in w.of("outreach_missed_follow_up")] == [0, 20]
    assert not w.of("escalate_lost_to_follow_up")


def test_follow_up_checks_are_due_just_after_14_and_28_days(definition):
    w = Walk(definition)
    w.pain(5, 5)
    days = [d.day for d in next_due(definition, w.facts, 5)]
    assert 19 + GRACE in days and 33 + GRACE in days


# --- Neurological deficit -------------------------------------------------------------------------------------

def test_neuro_deficit_refers_at_once_and_the_pathway_goes_on(definition):
    w = Walk(definition)
    w.event(20, type="neuro", deficit=True)
    w.event(25, type="neuro", deficit=True)
    (ref,) = w.of("refer_urgent_spine_surgery")
    assert ref.day == 20 and "neurological deficit reported on day 20" in ref.rationale.lower()
    assert ref.details["priority"] == "urgent" and "verify" in ref.citation
    assert escalation_state(w.facts) == "urgent_referral"
    w.until(42)
    assert w.status == "running" and len(w.of("order_radiograph")) == 2


def test_a_new_neuro_episode_refers_again(definition):
    w = Walk(definition, red_flags=["neuro_deficit"])
    w.event(10, type="neuro", deficit=False)
    w.event(30, type="neuro", deficit=True)
    assert [a.day for a in w.of("refer_urgent_spine_surgery")] == [0, 30]


# --- Red flags hold the augmentation referral ---------------------------------------------------------------

def test_before_vcf_1_2_a_red_flag_holds_the_referral_until_mri_says_osteoporotic(definition_v1_1):
    definition = definition_v1_1
    w = Walk(definition, pain_nrs=8, red_flags=["history_of_cancer"])
    w.pain(80, 7)
    w.alarm(84)
    assert not w.of("refer_vertebral_augmentation")
    (held,) = [n for n in w.notes if n.id == "twelve_week_review:held"]
    assert "history_of_cancer" in held.text
    w.event(86, type="mri", etiology="indeterminate")
    assert not w.of("refer_vertebral_augmentation")
    w.event(90, type="mri", etiology="osteoporotic")
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == 90 and ref.details["criteria"] == ["persistent_pain"]


def test_before_vcf_1_2_without_red_flags_the_referral_needs_no_mri(definition_v1_1):
    w = Walk(definition_v1_1, pain_nrs=8, red_flags=["neuro_deficit"])
    w.pain(80, 7)
    w.alarm(84)
    assert [a.day for a in w.of("refer_vertebral_augmentation")] == [84]


# --- Results recorded without an action of their own ------------------------------------------------

@pytest.mark.parametrize("t_score, confirmed", [(-3.1, True), (-2.5, True), (-2.4, False), (1.0, False)])
def test_dxa_result_is_recorded_against_the_t_score_threshold(definition, t_score, confirmed):
    w = Walk(definition)
    before = len(w.actions)
    w.event(5, type="dxa", t_score=t_score)
    assert len(w.actions) == before
    (note,) = [n for n in w.notes if n.id.startswith("dxa:")]
    assert f"T-score {t_score:g}" in note.text and ("osteoporosis confirmed" in note.text) is confirmed
    assert "Bone density evaluation" in note.citation


def test_before_vcf_1_2_a_side_effect_is_recorded_without_an_action(definition_v1_1):
    w = Walk(definition_v1_1)
    before = len(w.actions)
    w.event(5, type="side_effect", drug="calcitonin", effect="mild dizziness")
    assert len(w.actions) == before and w.status == "running"


# --- Pathologic fracture, withdrawal -------------------------------------------------------------------------

@pytest.mark.parametrize("etiology, specialty", [("malignant", "oncology"), ("infection", "infectious_disease")])
def test_pathologic_mri_exits_the_pathway(definition, etiology, specialty):
    w = Walk(definition, red_flags=["unexplained_weight_loss"])
    w.at(14)
    w.event(16, type="mri", etiology=etiology)
    assert w.kinds()[-3:] == ["stop_calcitonin", "refer_pathologic_fracture_workup", "request_clinician_review"]
    stop, ref, review = w.actions[-3:]
    assert review.details["reason"] == "pathologic_exit_medications" and review.day == 16
    assert stop.day == 16 and "pathologic fracture; the patient leaves the osteoporotic pathway" in stop.rationale
    assert "short-term use" not in stop.rationale  # the course's limit is not why it stops here
    assert ("malignancy signal" in stop.rationale) is (etiology == "malignant")
    finding = {"malignant": "a malignant", "infection": "an infective"}[etiology]
    assert ref.day == 16 and f"MRI on day 16 shows {finding} (pathologic) fracture" in ref.rationale
    assert ref.details["priority"] == "urgent" and ref.details["refer_to"] == [specialty, "spine_surgery"]
    assert {"order_radiograph", "refer_vertebral_augmentation", "refer_physical_therapy"} <= set(ref.details["cancels"])
    assert "Ruling out pathologic fracture" in ref.citation
    assert w.status == "exited" and phase(definition, w.status, 16) == "exited"
    before_365 = len(w.actions)
    w.at(365)
    assert len(w.actions) == before_365 and w.status == "exited"
    event = parse_event({"type": "mri", "etiology": "osteoporotic"})
    assert clinical_rejection(definition, w.facts, event, 20).startswith("etiology:")


def test_pathologic_exit_without_calcitonin_stops_nothing(definition):
    w = Walk(definition, onset_days_before_enrollment=9)
    w.event(40, type="mri", etiology="malignant")
    assert not w.of("stop_calcitonin") and w.status == "exited"


def test_pathologic_exit_after_day_28_does_not_stop_calcitonin_twice(definition):
    w = Walk(definition)
    w.alarm(28)
    w.event(40, type="mri", etiology="infection")
    assert [a.day for a in w.of("stop_calcitonin")] == [28]


def test_osteoporotic_or_indeterminate_mri_stays_on_the_pathway(definition):
    w = Walk(definition)
    w.event(5, type="mri", etiology="indeterminate")
    w.event(6, type="mri", etiology="osteoporotic")
    assert w.status == "running" and not w.of("refer_pathologic_fracture_workup")


def test_withdrawal_hands_the_calcitonin_course_over_and_ends_the_pathway(definition):
    """Safety rule 6: the open orders stay open for the care team; only the pathologic exit stops calcitonin."""
    w = Walk(definition)
    w.clinician(10, "withdraw")
    assert not w.of("stop_calcitonin") and w.status == "withdrawn"
    (handover,) = [a for a in w.of("request_clinician_review") if a.details["reason"] == "withdrawal_handover"]
    (course,) = [row for row in handover.details["open_orders"] if row["kind"] == "start_calcitonin"]
    assert course["stop_by_day"] == 28 and "its course ends on day 28 (hard stop" in handover.rationale
    w.at(100)
    assert not w.of("order_radiograph") and not w.of("stop_calcitonin") and w.status == "withdrawn"


def test_after_the_course_the_hand_over_names_no_calcitonin(definition):
    w = Walk(definition)
    w.until(30)
    w.clinician(30, "withdraw")
    (handover,) = [a for a in w.of("request_clinician_review") if a.details["reason"] == "withdrawal_handover"]
    assert "start_calcitonin" not in [row["kind"] for row in handover.details["open_orders"]]
    assert "Calcitonin" not in handover.rationale


@pytest.mark.parametrize("revision", [5, None])
def test_withdrawal_stopped_calcitonin_before_revision_6_and_before_vcf_1_2(definition, definition_v1_1, revision):
    w = Walk(definition, revision=5) if revision else Walk(definition_v1_1)
    w.clinician(10, "withdraw")
    (stop,) = w.of("stop_calcitonin")
    assert stop.day == 10 and "withdrawn" in stop.rationale
    assert w.status == "withdrawn"


# --- Pause and resume --------------------------------------------------------------------------------------------

def test_before_vcf_1_2_pause_holds_the_schedule_and_held_steps_fire_on_resume(definition_v1_1):
    w = Walk(definition_v1_1, pain_nrs=8)
    w.clinician(10, "pause")
    w.until(90)
    assert [a.kind for a in w.actions if a.day > 0] == ["stop_calcitonin"]  # the hard stop is not held
    assert not w.of("outreach_missed_follow_up")
    w.clinician(95, "resume")
    held = w.actions[-4:]
    assert [a.kind for a in held] == ["order_radiograph"] * 3 + ["refer_vertebral_augmentation"]
    assert [a.details["scheduled_day"] for a in held[:3]] == [14, 42, 84] and all(a.day == 95 for a in held)
    # The ten silent days before the pause count after it (revision 5): outreach 4 days after the resume.
    w.at(95 + 4 - JUST_AFTER)
    assert not w.of("outreach_missed_follow_up")
    w.at(95 + 4 + JUST_AFTER)
    (outreach,) = w.of("outreach_missed_follow_up")
    assert outreach.details["last_contact_day"] == 0 and "85 days paused not counted" in outreach.rationale


def test_pause_does_not_hold_responses_to_new_information(definition):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.clinician(5, "pause")
    w.pain(10, 8)
    w.pain(20, 3)
    w.event(21, type="neuro", deficit=True)
    assert {"offer_nerve_block", "refer_physical_therapy", "refer_urgent_spine_surgery"} <= set(w.kinds())


def test_pause_and_resume_must_alternate(definition):
    w = Walk(definition)
    w.clinician(3, "resume")
    w.clinician(4, "pause")
    w.clinician(5, "pause")
    assert w.rejected == ["decision: the pathway is not paused", "decision: the pathway is already paused"]


def test_paused_at_day_365_completes_only_after_resume(definition):
    w = Walk(definition)
    w.until(300)
    w.clinician(300, "pause")
    w.until(370)
    assert w.status == "running"
    w.clinician(371, "resume")
    assert w.status == "completed"


# --- Completion, phases, idempotency -----------------------------------------------------------------------------

def full_year(definition) -> Walk:
    w = confirmed(Walk(definition, pain_nrs=8, onset_days_before_enrollment=2))
    for day in range(10, 365, 12):
        w.pain(day, 3)
        w.until(day + 6)
    w.until(365)
    return w


def test_completion_at_day_365_after_the_12_month_screening(definition):
    w = Walk(definition, pain_nrs=8)
    for day in range(10, 360, 12):
        w.pain(day, 3)
    w.alarm(364.9)
    assert w.status == "running"
    w.alarm(365)
    assert w.status == "completed" and phase(definition, w.status, 365) == "completed"
    assert w.kinds()[-1] == "order_adjacent_fracture_screening"


def test_full_year_in_order(definition):
    w = full_year(definition)
    assert w.kinds() == [
        "prescribe_first_line_analgesia", "prescribe_opioid_short_course", *ENROLLMENT_KINDS[1:],
        "request_clinician_review", "refer_physical_therapy", "order_radiograph", "stop_calcitonin",
        "order_radiograph", "order_radiograph",
        "order_adjacent_fracture_screening", "order_adjacent_fracture_screening",
    ]  # fmt: skip
    assert w.status == "completed"
    assert not w.rejected
    for action in w.actions:
        assert_cited(definition, action)


def test_every_action_kind_has_a_citation(definition):
    assert set(definition.actions) == set(ACTION_KINDS)
    for kind in ACTION_KINDS:
        assert definition.actions[kind].section in definition.cite(kind)


@pytest.mark.parametrize("now, expected", [
    (0, "acute"), (41.9, "acute"), (42, "conservative"), (83.9, "conservative"), (84, "follow_up"), (364, "follow_up"),
])  # fmt: skip
def test_phase(definition, now, expected):
    assert phase(definition, "running", now) == expected
    assert phase(definition, "withdrawn", now) == "withdrawn"


def test_next_scheduled_step(definition):
    assert next_scheduled_step(definition, 0) == 14
    assert next_scheduled_step(definition, 14) == 42
    assert next_scheduled_step(definition, 84) == 182
    assert next_scheduled_step(definition, 365) is None


@pytest.mark.parametrize("now", [36, 84, 182, 365])
def test_deciding_twice_proposes_nothing_new(definition, now):
    w = Walk(definition, pain_nrs=8, red_flags=["neuro_deficit"])
    w.pain(9, 8)
    w.pain(20, 3)
    w.pain(30, 7)
    w.event(35, type="radiograph", height_loss_pct=31, new_fracture_level="L1")
    w.event(36, type="mobility", bed_bound=True)
    w.at(now)
    assert len(w.actions) > 15 and len({a.id for a in w.actions}) == len(w.actions)
    again = decide(definition, w.facts, now)
    assert again.actions == [] and again.notes == []


def test_same_facts_same_decision(definition):
    facts = PatientFacts(enrollment=enrollment(pain_nrs=9))
    first, second = decide(definition, facts, 0), decide(definition, facts, 0)
    assert [a.model_dump() for a in first.actions] == [a.model_dump() for a in second.actions]
    assert len({a.id for a in first.actions}) == len(first.actions)
