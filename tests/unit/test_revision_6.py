"""Decisions revision 6 (pathway.revision.REVISION), each change beside what revision 5 did: a
withdrawal stops nothing and hands the medication courses over with their end days; a result
answers the newest order placed by its day (tests/unit/test_results.py); a flare while a screening
still waits for its film orders no second one (tests/unit/test_decisions.py); a declined referral
stays declined for criteria found after the review."""

from __future__ import annotations

import pytest

from pathway.results import overdue_orders
from tests.unit.test_safety_rules import note_ids, reviews
from tests.unit.walk import Walk, confirmed


def declined_before_the_review(definition, revision: int) -> Walk:
    w = confirmed(Walk(definition, revision=revision))
    w.pain(70, 6)
    w.clinician(80, "decline_augmentation")
    w.pain(84, 6)
    w.until(200)
    return w


@pytest.mark.parametrize("revision, lapsed", [(5, True), (6, False)])
def test_a_declined_referral_is_not_reopened_by_criteria_after_the_review(definition, revision, lapsed):
    w = declined_before_the_review(definition, revision)
    assert not w.of("refer_vertebral_augmentation")
    assert "twelve_week_review:declined" in note_ids(w)
    assert ("twelve_week_review:criterion_lapsed" in note_ids(w)) is lapsed


def test_the_hand_over_names_the_opioid_course_review_and_stop_days(definition):
    w = Walk(definition, pain_nrs=9)
    w.clinician(3, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    (course,) = [row for row in handover.details["open_orders"] if row["kind"] == "prescribe_opioid_short_course"]
    assert (course["review_day"], course["stop_by_day"]) == (7, 14)
    assert "its review on day 7 and its stop by day 14 are the care team's now" in handover.rationale
    later = Walk(definition, pain_nrs=9)
    later.clinician(20, "withdraw")
    (handover,) = reviews(later, "withdrawal_handover")
    assert "The opioid short course was to stop by day 14: the care team confirms it has." in handover.rationale


def test_a_withdrawal_without_an_opioid_names_no_course(definition):
    w = Walk(definition, pain_nrs=5)
    w.clinician(3, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    assert "opioid" not in handover.rationale


def new_level_mri(definition, revision: int, new_level: str) -> Walk:
    """Enrolled at L2; the enrollment MRI is indeterminate; a film names a new fracture; the MRI then
    ordered for the new level says osteoporotic; pain subsided, then persisting at the review."""
    w = Walk(definition, revision=revision, fracture_level="L2", pain_nrs=6)
    w.event(5, type="mri", etiology="indeterminate")
    w.pain(14, 4)
    w.event(15, type="radiograph", height_loss_pct=25, new_fracture_level=new_level)
    w.event(20, type="mri", etiology="osteoporotic")
    w.pain(75, 7)
    w.until(85)
    return w


def test_an_mri_of_a_new_level_in_another_region_does_not_clear_the_enrolled_fracture(definition):
    w = new_level_mri(definition, 6, "T12")
    assert [a.id for a in w.of("order_mri")] == ["order_mri", "order_mri:T12"]
    assert not w.of("refer_physical_therapy") and not w.of("refer_vertebral_augmentation")
    (held,) = reviews(w, "review_evidence_missing")
    assert held.details["missing"] == ["mri_result"]
    before = new_level_mri(definition, 5, "T12")  # revision 5 took the thoracic MRI for the L2 fracture
    assert before.of("refer_physical_therapy") and before.of("refer_vertebral_augmentation")


def test_an_mri_of_a_new_level_in_the_same_region_images_the_enrolled_fracture_too(definition):
    w = new_level_mri(definition, 6, "L3")  # a lumbar MRI for L3 shows L2
    (pt,) = w.of("refer_physical_therapy")
    assert pt.day == 20
    assert w.of("refer_vertebral_augmentation")


def test_an_indeterminate_mri_of_a_new_level_holds_until_that_level_is_cleared(definition):
    """A pathologic fracture not ruled out elsewhere in the spine holds PT, as it did before revision 6;
    the new level's next MRI saying osteoporotic releases it, on that day."""
    w = confirmed(Walk(definition, fracture_level="L2", pain_nrs=6))  # the L2 MRI says osteoporotic
    w.event(6, type="radiograph", height_loss_pct=25, new_fracture_level="T10")
    w.event(8, type="mri", etiology="indeterminate")  # the T10 MRI
    w.pain(14, 4)
    assert not w.of("refer_physical_therapy")
    w.event(20, type="mri", etiology="osteoporotic")  # the T10 MRI again: the pending order is... none
    (pt,) = w.of("refer_physical_therapy")
    assert pt.day == 20


def test_an_osteoporotic_mri_of_a_new_level_leaves_the_enrolled_mri_day(definition):
    w = confirmed(Walk(definition, fracture_level="L2", pain_nrs=6))
    w.event(6, type="radiograph", height_loss_pct=25, new_fracture_level="T10")
    w.event(8, type="mri", etiology="osteoporotic")  # the T10 MRI
    w.pain(14, 4)
    (pt,) = w.of("refer_physical_therapy")
    assert pt.day == 14 and "day 8" not in pt.rationale


@pytest.mark.parametrize("revision, priority", [(5, "routine"), (6, "urgent")])
def test_with_a_red_flag_the_mri_of_a_new_level_is_urgent(definition, revision, priority):
    w = confirmed(Walk(definition, revision=revision, red_flags=["history_of_cancer"]))
    w.event(15, type="radiograph", height_loss_pct=25, new_fracture_level="T12")
    (mri,) = [a for a in w.of("order_mri") if a.id == "order_mri:T12"]
    assert mri.details["priority"] == priority
    overdue = [o.order.action_id for o in overdue_orders(definition, w.facts, 18.5, revision)]
    assert ("order_mri:T12" in overdue) is (priority == "urgent")  # more than 3 days without its result
    if priority == "urgent":
        assert "history_of_cancer" in mri.rationale


def test_without_a_red_flag_the_mri_of_a_new_level_stays_routine(definition):
    w = confirmed(Walk(definition))
    w.event(15, type="radiograph", height_loss_pct=25, new_fracture_level="T12")
    (mri,) = [a for a in w.of("order_mri") if a.id == "order_mri:T12"]
    assert mri.details["priority"] == "routine"


def test_the_note_on_a_new_level_mri_says_what_still_waits(definition):
    waiting = new_level_mri(definition, 6, "T12")  # the L2 MRI was indeterminate
    (note,) = [n for n in waiting.notes if n.id == "mri:20:osteoporotic"]
    assert "does not image the L2 fracture" in note.text and "still wait for the L2 fracture's MRI" in note.text
    cleared = confirmed(Walk(definition, fracture_level="T8"))  # the T8 MRI says osteoporotic
    cleared.event(15, type="radiograph", height_loss_pct=25, new_fracture_level="L1")
    cleared.event(20, type="mri", etiology="osteoporotic")
    (note,) = [n for n in cleared.notes if n.id == "mri:20:osteoporotic"]
    assert "does not image the T8 fracture" in note.text and "wait" not in note.text


def test_a_deformity_flagged_after_a_decline_says_no_referral_follows(definition):
    w = Walk(definition)
    w.event(3, type="mri", etiology="osteoporotic")
    w.event(60, type="clinician", decision="decline_augmentation", reason="patient prefers no procedure",
            author="dr-a")
    w.event(100, type="radiograph", height_loss_pct=40)
    (flag,) = w.of("flag_progressive_deformity")
    assert "augmentation was declined by dr-a on day 60: the pathway makes no referral" in flag.rationale
    assert "counts as spinal deformity" not in flag.rationale and not w.of("refer_vertebral_augmentation")


def test_the_referral_names_a_new_fracture_level_found_since_enrollment(definition):
    w = Walk(definition, fracture_level="T6", pain_nrs=6)
    w.event(3, type="mri", etiology="osteoporotic")
    w.event(30, type="radiograph", height_loss_pct=25, new_fracture_level="L1")
    w.event(80, type="pain", nrs=7)
    w.until(85)
    (referral,) = w.of("refer_vertebral_augmentation")
    assert "of the T6 fracture" in referral.rationale
    assert "New fracture since enrollment at L1 (day 30): the evaluation tells which level" in referral.rationale


def test_a_pathologic_mri_of_a_new_level_names_that_level(definition):
    w = Walk(definition)
    w.event(3, type="mri", etiology="osteoporotic")
    w.event(30, type="radiograph", height_loss_pct=25, new_fracture_level="T12")
    w.event(40, type="mri", etiology="malignant")
    (workup,) = w.of("refer_pathologic_fracture_workup")
    assert workup.rationale.startswith("MRI on day 40 of the new T12 fracture shows a malignant (pathologic) fracture")
    assert any(n.text.startswith("MRI of the new T12 fracture shows") for n in w.notes) and w.status == "exited"


def test_the_hand_over_marks_an_urgent_order_still_without_its_result(definition):
    w = Walk(definition, red_flags=["fever_or_infection"])
    w.clinician(2, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    rows = {row["id"]: row for row in handover.details["open_orders"]}
    assert rows["order_mri"]["priority"] == "urgent" and "priority" not in rows["order_dxa"]
    assert "Urgent, still without a result: order_mri." in handover.rationale
    routine = Walk(definition)
    routine.clinician(2, "withdraw")
    (handover,) = reviews(routine, "withdrawal_handover")
    assert not any("priority" in row for row in handover.details["open_orders"]) and "Urgent" not in handover.rationale


def test_a_review_held_by_another_regions_mri_says_what_that_mri_says(definition):
    w = confirmed(Walk(definition))  # the L2 MRI says osteoporotic
    w.event(30, type="radiograph", height_loss_pct=25, new_fracture_level="T11")
    w.event(50, type="mri", etiology="indeterminate")
    w.pain(80, 6)
    w.until(85)
    (held,) = reviews(w, "review_evidence_missing")
    assert "no MRI result saying osteoporotic for each region imaged" in held.rationale
    assert "the MRI on day 50 imaged the new fracture at T11, not L2, and says indeterminate" in held.rationale
    (mri_review,) = reviews(w, "indeterminate_mri")
    assert mri_review.details["level"] == "T11" and "of the new T11 fracture is indeterminate" in mri_review.rationale


@pytest.mark.parametrize("revision, noted", [(7, True), (6, False)])
def test_pulmonary_dysfunction_resolved_after_a_referral_on_it_is_noted(definition, revision, noted):
    w = confirmed(Walk(definition, revision=revision))
    w.event(20, type="pulmonary", dysfunction=True)
    w.pain(80, 2)
    w.until(85)
    assert w.of("refer_vertebral_augmentation")[0].details["criteria"] == ["pulmonary_dysfunction"]
    w.event(90, type="pulmonary", dysfunction=False)
    found = [n for n in w.notes if n.id == "refer_vertebral_augmentation:pulmonary_resolved"]
    assert bool(found) is noted
    if noted:
        assert found[0].day == 90 and "the augmentation referral of day 84 named pulmonary dysfunction" in found[0].text


def test_a_day_given_to_the_second_reads_as_a_day_in_texts(definition):
    """An event sent through the API is observed at an instant: the texts give its day to two decimals."""
    from pathway.builder import readable_days

    w = Walk(definition)
    w.event(25 / 86400, type="side_effect", drug="ibuprofen", effect="nausea")
    (review,) = reviews(w, "side_effect")
    assert review.rationale.startswith("Side effect reported on day 0 (ibuprofen: nausea)")
    assert readable_days("pain on day 12.3457, days 69.999 and day 42") == "pain on day 12.35, days 69.999 and day 42"


def test_an_mri_taken_as_the_new_levels_while_the_enrolled_one_waits_says_so(definition):
    """An MRI names no level: with the L2 MRI and the T12 MRI both open, the newest order took it."""
    w = Walk(definition)
    w.event(5, type="radiograph", height_loss_pct=25, new_fracture_level="T12")
    w.event(8, type="mri", etiology="malignant")
    (workup,) = w.of("refer_pathologic_fracture_workup")
    assert workup.rationale.startswith("MRI on day 8 of the new T12 fracture (taken as the newest MRI order open; "
                                       "the L2 fracture's MRI also waited for its result) shows a malignant")


def test_an_osteoporotic_mri_taken_as_the_new_levels_says_it_is_not_counted_for_the_enrolled_one(definition):
    """The same guess for an MRI saying osteoporotic: its note and the held review say it was taken as the
    new level's, not that it imaged that level (the result named none)."""
    w = Walk(definition)
    w.event(42, type="radiograph", height_loss_pct=25, new_fracture_level="T12")
    w.event(50, type="mri", etiology="osteoporotic")
    w.pain(80, 6)
    w.until(84.01)
    (read,) = [n for n in w.notes if n.id == "mri:50:osteoporotic"]
    assert "taken as the newest MRI order open, while the L2 fracture's MRI also waited" in read.text
    assert "It is not counted for the L2 fracture (lumbar spine; a result sent for the L2 MRI order is)" in read.text
    (held,) = reviews(w, "review_evidence_missing")
    assert "the MRI on day 50 was taken as the new fracture's at T12 (the newest MRI order open), not L2's" \
        in held.rationale
    assert "imaged the new fracture" not in held.rationale
