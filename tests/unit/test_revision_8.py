"""Decisions revision 8 (pathway.revision.REVISION), beside what revision 7 did: a 12-week review held
for its evidence, then paused, keeps its evidence window on resume — the report the care team's task
asked for counts, one sent during the pause too; the suggested procedure grades the greatest height loss
measured; the screening window's last day counts when the workflow decides an instant after it."""

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


@pytest.mark.parametrize("revision, procedure, grade", [(7, "vertebroplasty", 1), (8, "balloon_kyphoplasty", 2)])
def test_the_suggested_procedure_grades_the_greatest_height_loss_measured(definition, revision, procedure, grade):
    """25% at enrollment (grade 2), a film reading 24% on day 42: a point lower is measurement, not a vertebra
    that regained height, and no longer turns the suggestion to vertebroplasty."""
    w = confirmed(Walk(definition, revision=revision, height_loss_pct=25))
    w.event(42, type="radiograph", height_loss_pct=24)
    w.pain(80, 6)
    w.until(84.01)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.details["suggested_procedure"] == procedure and ref.details["genant_grade"] == grade
    # Revision 8 names the height loss it graded; a pathway on revision 7 keeps its wording.
    assert ("(Genant grade 2: height loss 25%)" if revision == 8 else
            "(Genant grade 1, no progressive deformity)") in ref.rationale


def test_a_film_reading_more_than_enrollment_is_the_one_graded(definition):
    w = confirmed(Walk(definition, height_loss_pct=22))  # grade 1 at enrollment
    w.event(42, type="radiograph", height_loss_pct=25)  # grade 2 (not progressive: 22 -> 25 is under 20% relative)
    w.event(70, type="radiograph", height_loss_pct=23)
    w.pain(80, 6)
    w.until(84.01)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.details["criteria"] == ["persistent_pain"]
    assert ref.details["suggested_procedure"] == "balloon_kyphoplasty" and ref.details["genant_grade"] == 2


@pytest.mark.parametrize("revision, screenings", [(7, [10, 70]), (8, [10])])
def test_a_flare_exactly_60_days_after_a_screening_still_waiting_is_covered_by_it(definition, revision, screenings):
    """The workflow decides a report a few milliseconds after it was observed: a flare on day 70 arrives
    just past 60 days after the day-10 flare's screening, still without its film. From revision 8 that is
    within the window, as the scheduled screening's skip counts it."""
    w = confirmed(Walk(definition, revision=revision, pain_nrs=2), day=2)
    lag = 0.05 / 86400
    w.event(10, arrives=10 + lag, type="pain", nrs=6)
    for day in (20, 30, 40, 50, 60):
        w.event(day, arrives=day + lag, type="pain", nrs=2)
    w.event(70, arrives=70 + lag, type="pain", nrs=6)
    assert [a.day for a in w.of("order_adjacent_fracture_screening")] == screenings
    covered = "order_adjacent_fracture_screening:flare:70:covered" in note_ids(w)
    assert covered is (revision == 8)


@pytest.mark.parametrize("revision, skipped", [(7, False), (8, True)])
def test_a_scheduled_screening_on_a_resume_exactly_60_days_after_a_flare_screening_is_skipped(
        definition, revision, skipped):
    """A flare screening on day 130; the day-182 screening falls due in a pause and is ordered on the resume,
    day 190 — 60 days later, within the window. The workflow decides the resume an instant after day 190."""
    w = confirmed(Walk(definition, revision=revision))
    lag = 0.05 / 86400
    for day, nrs in ((100, 2), (130, 6)):
        w.event(day, arrives=day + lag, type="pain", nrs=nrs)
    w.event(150, arrives=150 + lag, type="clinician", decision="pause", reason="r", author="dr-a")
    w.event(190, arrives=190 + lag, type="clinician", decision="resume", reason="r", author="dr-a")
    prefix = "order_adjacent_fracture_screening:day-182"
    assert (f"{prefix}:skipped" in note_ids(w)) is skipped
    assert bool([a for a in w.actions if a.id == prefix]) is not skipped


@pytest.mark.parametrize("revision", [7, 8])
def test_persistent_pain_found_after_the_review_refers_only_while_it_persists(definition, revision):
    """Held on day 84 for the MRI; NRS 5 on day 109 and 7 on day 128 (19 days apart, none below 5 between), then
    NRS 4 on day 145; the MRI on day 155 decides the review: no criterion (the latest score is 4). Before
    revision 8 the pair of day 128 still referred at the next decision, beside PT started because pain had
    subsided; from revision 8 the run of scores of 5 or more ended on day 145."""
    w = Walk(definition, revision=revision, fracture_level="T2", height_loss_pct=40, pain_nrs=7)
    for day, nrs in ((109, 5), (128, 7), (145, 4)):
        w.pain(day, nrs)
    w.event(155, type="mri", etiology="osteoporotic")
    w.until(170)
    (done,) = [n for n in w.notes if n.id == "twelve_week_review:done"]
    assert "no criterion met (latest pain NRS 4)" in done.text
    assert [a.day for a in w.of("refer_physical_therapy")] == [155]
    assert [a.day for a in w.of("refer_vertebral_augmentation")] == ([] if revision == 8 else [159])


@pytest.mark.parametrize("revision, referred_on", [(7, 115), (8, 134)])
def test_a_criterion_held_for_the_mri_refers_on_pain_that_still_persists(definition, revision, referred_on):
    """The review referred no one on day 84; an indeterminate MRI on day 88 holds what is found after it. NRS 5
    and 7 (days 90, 104) meet the criterion while held; NRS 4 on day 110 ends that run before the MRI saying
    osteoporotic comes on day 115. From revision 8 no referral is made on the eased pain; a new run (6, 6, 7 on
    days 120, 127, 134) refers once it has lasted 14 days."""
    w = confirmed(Walk(definition, revision=revision, pain_nrs=3))
    w.pain(80, 3)
    w.until(84.01)
    w.event(88, type="mri", etiology="indeterminate")
    for day, nrs in ((90, 5), (104, 7), (110, 4)):
        w.pain(day, nrs)
    assert "twelve_week_review:criterion_held" in note_ids(w)
    eased = [n for n in w.notes if n.id == "twelve_week_review:criterion_eased"]
    assert [n.day for n in eased] == ([110] if revision == 8 else [])  # the care team learns the hold has ended
    if eased:
        (held,) = [n for n in w.notes if n.id == "twelve_week_review:criterion_held"]
        assert "pain NRS 4 on day 110 is below 5" in eased[0].text and eased[0].citation == held.citation
    w.event(115, type="mri", etiology="osteoporotic")
    for day, nrs in ((120, 6), (127, 6), (134, 7)):
        w.pain(day, nrs)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == referred_on and ref.details["criteria"] == ["persistent_pain"]
    if revision == 8:
        assert "NRS 6 on day 120 and NRS 7 on day 134" in ref.rationale
