"""Decisions revision 5 (pathway.revision.REVISION), each change beside what revision 4 did: one
order for the radiographs a pause let fall due together, also when it ends at one's instant; one
screening when both fall due together; the days a pause held the follow-up checks do not count in a
gap in pain reports; a criterion found after the review refers only by the review's hold limit."""

from __future__ import annotations

import pytest

from pathway.decisions import escalation_state
from pathway.facts import GRACE
from tests.unit.test_safety_rules import note_ids
from tests.unit.walk import Walk, confirmed


@pytest.mark.parametrize("revision, orders", [(4, ["order_radiograph:day-14", "order_radiograph:day-42"]),
                                              (5, ["order_radiograph:day-14+42"])])
def test_a_pause_ending_at_a_scheduled_radiograph_orders_the_radiographs_due_once(definition, revision, orders):
    w = Walk(definition, revision=revision)
    w.until(13)
    w.clinician(13, "pause")
    w.until(42)
    w.clinician(42, "resume")
    w.until(43)
    assert [a.id for a in w.of("order_radiograph")] == orders
    assert all(round(a.day) == 42 for a in w.of("order_radiograph"))


@pytest.mark.parametrize("revision", [4, 5])
def test_both_screenings_due_together_after_a_pause_are_one_order(definition, revision):
    w = Walk(definition, revision=revision)
    for day in range(10, 170, 12):
        w.until(day)
        w.pain(day, 3)
    w.until(170)
    w.clinician(170, "pause")
    w.until(370)
    w.clinician(370, "resume")
    w.until(371)
    scheduled = [a for a in w.of("order_adjacent_fracture_screening") if a.details["trigger"] == "schedule"]
    assert w.status == "completed"
    if revision == 4:
        assert [a.details["scheduled_day"] for a in scheduled] == [182, 365]
        return
    assert [(a.details["scheduled_day"], a.day) for a in scheduled] == [(182, 370)]
    (skipped,) = [n for n in w.notes if n.id == "order_adjacent_fracture_screening:day-365:skipped"]
    assert "the day-182 screening was ordered on day 370" in skipped.text


def test_a_screening_on_time_never_skips_the_next(definition):
    w = Walk(definition)
    w.until(366)
    assert [a.details["scheduled_day"] for a in w.of("order_adjacent_fracture_screening")] == [182, 365]


@pytest.mark.parametrize("revision", [4, 5])
def test_a_short_pause_does_not_reset_the_silence_before_it(definition, revision):
    w = Walk(definition, revision=revision)
    w.until(20)
    w.clinician(20, "pause")
    w.clinician(21, "resume")
    w.until(50)
    outreach = [(a.day, a.details["last_contact_day"]) for a in w.of("outreach_missed_follow_up")]
    escalated = [(a.day, a.details["last_contact_day"]) for a in w.of("escalate_lost_to_follow_up")]
    if revision == 4:  # the resume started a new gap: a second outreach, escalated three weeks late
        assert outreach == [(14, 0), (35, 21)] and escalated == [(49, 21)]
        return
    assert outreach == [(14, 0)] and escalated == [(29, 0)]  # 28 silent days on the pathway's clock
    assert "1 days paused not counted" in w.of("escalate_lost_to_follow_up")[0].rationale
    assert escalation_state(w.facts) == "lost_to_follow_up"
    w.pain(31, 4)
    assert escalation_state(w.facts) == "none"


def test_the_gap_counts_only_the_pause_after_the_last_report(definition):
    w = Walk(definition)
    w.until(5)
    w.clinician(5, "pause")
    w.pain(10, 4)  # a report during the pause: the gap starts here, paused until day 30
    w.clinician(30, "resume")
    w.until(44 + GRACE / 2)
    assert not w.of("outreach_missed_follow_up")
    w.until(45)
    (outreach,) = w.of("outreach_missed_follow_up")
    assert outreach.details["last_contact_day"] == 10 and round(outreach.day) == 44
    assert "20 days paused not counted" in outreach.rationale


def late_mri_after_a_criterion(definition, revision, mri_day):
    """A review at day 84 without a criterion; an indeterminate MRI holds what comes after; pulmonary
    dysfunction on day 100; the MRI saying osteoporotic again on ``mri_day``."""
    w = confirmed(Walk(definition, revision=revision), day=2)
    w.pain(80, 3)
    w.until(84)
    assert "twelve_week_review:done" in note_ids(w)
    w.event(90, type="mri", etiology="indeterminate")
    w.event(100, type="pulmonary", dysfunction=True)
    w.until(mri_day)
    w.event(mri_day, type="mri", etiology="osteoporotic")
    w.until(mri_day + 1)
    return w


def test_a_criterion_after_the_review_refers_when_the_mri_comes_by_day_182(definition):
    w = late_mri_after_a_criterion(definition, 5, 150)
    assert "twelve_week_review:criterion_held" in note_ids(w)
    (referral,) = w.of("refer_vertebral_augmentation")
    assert referral.day == 150 and referral.details["criteria"] == ["pulmonary_dysfunction"]


@pytest.mark.parametrize("revision", [4, 5])
def test_a_criterion_after_the_review_lapses_at_day_182_without_the_mri(definition, revision):
    w = late_mri_after_a_criterion(definition, revision, 190)
    if revision == 4:
        assert [a.day for a in w.of("refer_vertebral_augmentation")] == [190]
        return
    assert not w.of("refer_vertebral_augmentation")
    (held,) = [n for n in w.notes if n.id == "twelve_week_review:criterion_held"]
    (lapsed,) = [n for n in w.notes if n.id == "twelve_week_review:criterion_lapsed"]
    assert held.day == 100 and "pulmonary dysfunction" in held.text and "MRI on day 90: indeterminate" in held.text
    assert round(lapsed.day) == 182 and "no augmentation referral" in lapsed.text and lapsed.citation


def reviewed_without_referral(definition, revision):
    """An osteoporotic MRI on day 3, a low score before the review: decided at day 84, nobody referred."""
    w = confirmed(Walk(definition, revision=revision, pain_nrs=5))
    w.pain(80, 2)
    w.until(84)
    assert "twelve_week_review:done" in note_ids(w) and not w.of("refer_vertebral_augmentation")
    return w


@pytest.mark.parametrize("revision, referred_on", [(4, 150), (5, 120)])
def test_a_criterion_found_during_a_pause_refers_then(definition, revision, referred_on):
    w = reviewed_without_referral(definition, revision)
    w.clinician(100, "pause")
    w.pain(105, 6)
    w.pain(120, 6)  # the second report of a pair: found after the review, while paused
    w.until(149)
    w.clinician(150, "resume")
    (referral,) = w.of("refer_vertebral_augmentation")
    assert referral.day == referred_on and referral.details["criteria"] == ["persistent_pain"]


def test_a_criterion_found_during_a_pause_past_day_182_is_noted_when_it_lapses(definition):
    w = reviewed_without_referral(definition, 5)
    w.event(90, type="mri", etiology="indeterminate")
    w.clinician(100, "pause")
    w.event(120, type="radiograph", height_loss_pct=35)
    w.until(199)
    w.clinician(200, "resume")
    w.until(201)
    assert not w.of("refer_vertebral_augmentation")
    held = next(n for n in w.notes if n.id == "twelve_week_review:criterion_held")
    lapsed = next(n for n in w.notes if n.id == "twelve_week_review:criterion_lapsed")
    assert held.day == 120 and round(lapsed.day) == 182


def test_a_criterion_reported_only_after_day_182_is_noted_not_referred(definition):
    w = reviewed_without_referral(definition, 5)
    w.until(190)
    w.event(150, arrives=190, type="pulmonary", dysfunction=True)  # observed in time, reported late
    assert not w.of("refer_vertebral_augmentation")
    (lapsed,) = [n for n in w.notes if n.id == "twelve_week_review:criterion_lapsed"]
    assert "known only on day 190" in lapsed.text and "pulmonary dysfunction" in lapsed.text


@pytest.mark.parametrize("revision", [4, 5])
def test_a_held_review_decided_on_resume_reads_the_days_before_the_resume(definition, revision):
    w = Walk(definition, revision=revision, pain_nrs=5)
    w.pain(80, 6)
    w.until(84)
    assert "twelve_week_review:held" in note_ids(w)  # the MRI has not come
    w.clinician(90, "pause")
    w.event(100, type="mri", etiology="osteoporotic")
    w.until(169)
    w.clinician(170, "resume")
    if revision == 4:  # decided on the day-80 score, 90 days old
        assert [a.day for a in w.of("refer_vertebral_augmentation")] == [170]
        return
    assert not w.of("refer_vertebral_augmentation")
    w.pain(172, 6)
    (referral,) = w.of("refer_vertebral_augmentation")
    assert referral.day == 172 and "latest pain NRS 6 (day 172)" in referral.rationale
