"""Decisions revision 6 (pathway.builder.REVISION), each change beside what revision 5 did: a
withdrawal stops nothing and hands the medication courses over with their end days; a result
answers the newest order placed by its day (tests/unit/test_results.py); a flare while a screening
still waits for its film orders no second one (tests/unit/test_decisions.py); a declined referral
stays declined for criteria found after the review."""

from __future__ import annotations

import pytest

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
    assert "opioid short course: reviewed on day 7, stopped by day 14" in handover.rationale


def test_a_withdrawal_without_an_opioid_names_no_course(definition):
    w = Walk(definition, pain_nrs=5)
    w.clinician(3, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    assert "opioid" not in handover.rationale
