"""Decisions revision 8 (pathway.revision.REVISION), beside what revision 7 did: a 12-week review held
for its evidence, then paused, keeps its evidence window on resume — the report the care team's task
asked for counts, one sent during the pause too."""

from __future__ import annotations

import pytest

from tests.unit.test_safety_rules import note_ids, reviews
from tests.unit.walk import Walk, confirmed


def held_for_a_pain_report_then_paused(definition, revision: int) -> Walk:
    """No pain report from day 70 on at the review; paused on day 86; NRS 6 on day 95; resumed on day 120."""
    w = confirmed(Walk(definition, revision=revision))
    w.pain(60, 6)
    w.until(84.01)
    w.clinician(86, "pause")
    w.pain(95, 6)
    w.clinician(120, "resume")
    return w


def test_a_report_sent_during_the_pause_decides_a_held_review_on_resume(definition):
    w = held_for_a_pain_report_then_paused(definition, 8)
    (held,) = reviews(w, "review_evidence_missing")
    assert held.day == 84 and "no pain report from day 70 on" in held.rationale
    assert not [a for a in w.of("refer_vertebral_augmentation") if a.day < 120]  # the pause holds the review
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == 120 and ref.details["criteria"] == ["persistent_pain"]
    assert "decided on day 120 when the pathway resumed" in ref.rationale and "(day 95)" in ref.rationale
    w.until(200)
    assert "twelve_week_review:lapsed" not in note_ids(w)


def test_before_revision_8_the_window_moved_to_the_days_before_the_resume(definition):
    w = held_for_a_pain_report_then_paused(definition, 7)
    w.until(200)
    assert not w.of("refer_vertebral_augmentation")
    (lapsed,) = [n for n in w.notes if n.id == "twelve_week_review:lapsed"]
    assert "pain report from day 106 on" in lapsed.text


@pytest.mark.parametrize("revision, referred_on", [(7, None), (8, 150)])
def test_an_mri_during_the_pause_decides_a_review_held_for_it_on_the_report_before(definition, revision,
                                                                                    referred_on):
    """Held on day 84 for the MRI alone (NRS 6 on day 75 is current); the MRI comes during the pause."""
    w = Walk(definition, revision=revision)
    w.pain(75, 6)
    w.until(84.01)
    (held,) = reviews(w, "review_evidence_missing")
    assert held.details["missing"] == ["mri_result"]
    w.clinician(90, "pause")
    w.event(120, type="mri", etiology="osteoporotic")
    w.clinician(150, "resume")
    w.until(200)
    assert [a.day for a in w.of("refer_vertebral_augmentation")] == ([referred_on] if referred_on else [])


def test_a_pause_that_held_the_review_itself_still_counts_only_the_days_before_the_resume(definition):
    """Unchanged by revision 8: a review a pause kept from coming due is reviewed on resume, on the days
    before it (a report from before the pause is weeks old by then)."""
    w = confirmed(Walk(definition))
    w.pain(75, 6)
    w.clinician(80, "pause")
    w.clinician(100, "resume")
    assert not w.of("refer_vertebral_augmentation")
    (held,) = reviews(w, "review_evidence_missing")
    assert held.day == 100 and "no pain report from day 86 on" in held.rationale
