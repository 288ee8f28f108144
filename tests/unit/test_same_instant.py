"""Events observed at the very instant a step is scheduled for (a scenario's events of that day):
from revision 4 they all come before the step, which is due once its instant has passed (its alarm
rings a second later); revision 3 ran the step with the first of them."""

from __future__ import annotations

import pytest

from pathway.decisions import next_due
from tests.unit.walk import Walk


def review_at_day_84_with_its_evidence(definition, revision: int) -> Walk:
    w = Walk(definition, pain_nrs=7, revision=revision)
    w.pain(10, 6)
    w.event(84, type="mri", etiology="osteoporotic")  # both observed at the review's instant
    w.pain(84, 6)
    w.until(84)
    return w


def test_the_review_sees_every_event_of_its_instant(definition):
    w = review_at_day_84_with_its_evidence(definition, revision=4)
    (referral,) = w.of("refer_vertebral_augmentation")
    assert referral.day == 84 and referral.details["criteria"] == ["persistent_pain"]
    assert "review_evidence_missing" not in [a.details.get("reason") for a in w.of("request_clinician_review")]
    assert "twelve_week_review:held" not in [n.id for n in w.notes]


def test_revision_3_ran_the_review_with_the_first_event_of_its_instant(definition):
    w = review_at_day_84_with_its_evidence(definition, revision=3)
    reasons = [a.details.get("reason") for a in w.of("request_clinician_review")]
    assert "review_evidence_missing" in reasons  # held for the report that came next, then decided on it
    assert len(w.of("refer_vertebral_augmentation")) == 1


@pytest.mark.parametrize("revision, at_the_instant", [(4, False), (3, True)])
def test_a_scheduled_step_is_due_once_its_instant_has_passed(definition, revision, at_the_instant):
    w = Walk(definition, revision=revision)
    w.at(14)
    assert bool(w.of("order_radiograph")) is at_the_instant
    assert (14 in [d.day for d in next_due(definition, w.facts, 14, revision)]) is not at_the_instant
    w.alarm(14)
    assert [a.id for a in w.of("order_radiograph")] == ["order_radiograph:day-14"]
    assert w.of("order_radiograph")[0].day == 14


def test_two_reports_on_the_day_of_completion_are_both_taken(definition):
    w = Walk(definition)
    w.until(364)
    w.pain(365, 3)
    w.pain(365, 2)
    assert w.status == "running" and not w.rejected
    w.until(365)
    assert w.status == "completed"
    assert [a.day for a in w.of("order_adjacent_fracture_screening")][-1] == 365
