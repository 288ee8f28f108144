"""Decisions revision 9 (pathway.revision.REVISION), beside what revision 8 did: a pain flare orders its
screening at once also while an earlier screening still waits for its film; a pain report observed
before enrollment, and a result observed before the fracture, are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pathway.contract import parse_event
from pathway.facts import PatientFacts
from pathway.intake import admit, clinical_rejection, observed_too_early
from tests.unit.test_safety_rules import note_ids
from tests.unit.walk import Walk, confirmed

SCREENING = "order_adjacent_fracture_screening"


@pytest.mark.parametrize("revision, flare_ordered", [(8, False), (9, True)])
def test_a_flare_after_the_six_month_screening_orders_its_own_while_that_film_is_missing(definition, revision,
                                                                                        flare_ordered):
    """The day-182 screening was ordered and never taken; on day 235 pain flares (NRS 8, lowest 3).
    Revision 8 only noted it as covered by the missing film, 39 days after the film was escalated."""
    w = confirmed(Walk(definition, pain_nrs=6, revision=revision))
    for day in range(14, 182, 14):
        w.pain(day, 3)
    w.until(234)
    w.pain(235, 8)
    ids = [a.id for a in w.of(SCREENING)]
    assert ids == ([f"{SCREENING}:day-182", f"{SCREENING}:flare:235"] if flare_ordered else [f"{SCREENING}:day-182"])
    assert (f"{SCREENING}:flare:235:covered" in note_ids(w)) is not flare_ordered
    if flare_ordered:
        (flare,) = [a for a in w.of(SCREENING) if a.id.endswith("flare:235")]
        assert flare.day == 235 and "NRS 8 on day 235 is >= 3 above the lowest score 3" in flare.rationale


def test_a_flare_on_the_day_a_screening_was_ordered_is_still_that_screenings_need(definition):
    """One task per need (safety rule 12): hours after the scheduled screening was ordered, it covers the flare."""
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(20, 2)
    w.pain(100, 2)
    w.until(182.01)
    w.pain(182.5, 6)
    assert [a.id for a in w.of(SCREENING)] == [f"{SCREENING}:day-182"]
    assert f"{SCREENING}:flare:182.5:covered" in note_ids(w)


def _event(**fields):
    return parse_event(fields)


@pytest.mark.parametrize("event, observed_day, onset, refused", [
    ({"type": "pain", "nrs": 1}, -3, 5, "observed_at: 3.0 days before enrollment: a pain report from before"),
    ({"type": "pain", "nrs": 1}, -2 / 1440, 0, None),  # two minutes early: the clock skew, counted at day 0
    ({"type": "mri", "etiology": "osteoporotic"}, -2, 3, None),  # since the fracture: an MRI in the ED
    ({"type": "mri", "etiology": "osteoporotic"}, -0.8, 0, None),  # the onset's day, before enrollment
    ({"type": "mri", "etiology": "osteoporotic"}, -4200, 3, "observed_at: 11 years before enrollment, before the "
                                                             "fracture (its onset was 3 day(s) before enrollment)"),
    ({"type": "radiograph", "height_loss_pct": 25}, -9, 3, "observed_at: 9.0 days before enrollment, before the"),
    ({"type": "dxa", "t_score": -2.7}, -400, 0, "observed_at: 400 days before enrollment, before the fracture"),
    ({"type": "mobility", "bed_bound": True}, -3, 0, None),  # a spell that began before: counted from day 0
    ({"type": "neuro", "deficit": True}, -1, 0, None),
])  # fmt: skip
def test_what_was_observed_too_early_to_count(event, observed_day, onset, refused):
    reason = observed_too_early(_event(**event), observed_day, onset)
    assert reason is None if refused is None else reason is not None and reason.startswith(refused)


@pytest.mark.parametrize("revision, refused", [(8, False), (9, True)])
def test_the_refusal_is_revision_9s(definition, revision, refused):
    facts = PatientFacts.model_validate({"enrollment": {"id": "pt-r9", "fracture_level": "L2", "height_loss_pct": 25,
                                                        "pain_nrs": 8}})
    reason = clinical_rejection(definition, facts, _event(type="pain", nrs=1), 0.0, revision, observed_day=-3)
    assert (reason is not None) is refused
    assert clinical_rejection(definition, facts, _event(type="pain", nrs=1), 0.0, revision) is None  # no observed_at


def test_a_flare_reported_after_the_screening_ordered_since_it_is_covered_by_that_screening(definition):
    """A flare observed on day 181.5 and reported on day 183.2: the day-182 screening, ordered after the
    flare and still without its film, images what the flare asks for (safety rule 12, one task per need)."""
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(20, 2)
    w.pain(100, 2)
    w.until(183)
    w.event(181.5, arrives=183.2, type="pain", nrs=6)
    assert [a.id for a in w.of(SCREENING)] == [f"{SCREENING}:day-182"]
    (covered,) = [n for n in w.notes if n.id == f"{SCREENING}:flare:181.5:covered"]
    assert "ordered on day 182 (after the flare) still waits for its result" in covered.text


@pytest.mark.parametrize("revision, twelve_month_ordered", [(8, False), (9, True)])
def test_the_twelve_month_screening_is_not_skipped_for_a_six_month_one_a_pause_held(definition, revision,
                                                                                   twelve_month_ordered):
    """Paused from day 150 to day 320: the day-182 screening is ordered on resume, 45 days before the
    12-month one. Safety rule 12 skips a scheduled screening after a flare's alone; revisions 5 to 8 also
    skipped it within 60 days after the other scheduled one, so this patient had no 12-month screening."""
    w = confirmed(Walk(definition, pain_nrs=6, revision=revision))
    for day in range(14, 150, 14):
        w.pain(day, 3)
    w.clinician(150, "pause")
    w.clinician(320, "resume")
    for day in range(330, 366, 14):
        w.pain(day, 3)
    w.until(366)
    ids = [a.id for a in w.of(SCREENING)]
    assert ids == [f"{SCREENING}:day-182"] + ([f"{SCREENING}:day-365"] if twelve_month_ordered else [])
    assert (f"{SCREENING}:day-365:skipped" in note_ids(w)) is not twelve_month_ordered


def test_screenings_due_together_after_a_pause_are_one(definition):
    """Paused from day 150 to day 380: both scheduled screenings fall due at the resume — one order."""
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(14, 3)
    w.clinician(150, "pause")
    w.clinician(380, "resume")
    w.until(381)
    assert [a.id for a in w.of(SCREENING)] == [f"{SCREENING}:day-182"]
    (skipped,) = [n for n in w.notes if n.id == f"{SCREENING}:day-365:skipped"]
    assert "the day-182 screening was ordered on day 380, due with it after the pause: one screening" in skipped.text


@pytest.mark.parametrize("sent, reason", [
    ("pain", "type: 'pain' sent on the 'pulmonary' signal"),  # a contract type: named
    ("\u202epain" + "x" * 5000, "type: not 'pulmonary', the signal it was sent on"),  # anything else: not quoted
])  # fmt: skip
def test_a_type_other_than_its_signals_is_refused_without_quoting_the_sender(sent, reason):
    now = datetime(2026, 11, 27, tzinfo=UTC)
    admitted = admit({"type": sent, "dysfunction": True}, status="running", seen_event_ids=[], enrolled_at=now,
                     now=now, event_type="pulmonary")
    assert admitted.reason == reason


def held_for_the_mri(definition, revision: int, pause: float, mri: float, resume: float) -> Walk:
    """NRS 7 on day 80, no MRI result at the review (held for it), then a pause; the MRI comes during it."""
    w = Walk(definition, pain_nrs=6, revision=revision)
    w.pain(80, 7)
    w.until(84.01)
    w.clinician(pause, "pause")
    w.until(mri)
    w.event(mri, type="mri", etiology="osteoporotic")
    w.until(resume)
    w.clinician(resume, "resume")
    w.until(resume + 1)
    return w


@pytest.mark.parametrize("revision, referred_on", [(8, 120), (9, 100)])
def test_a_held_review_is_decided_when_its_mri_arrives_during_a_pause(definition, revision, referred_on):
    """Safety rule 1: "decided as soon as the missing evidence arrives, until day 182"."""
    w = held_for_the_mri(definition, revision, pause=90, mri=100, resume=120)
    (held,) = [a for a in w.of("request_clinician_review") if a.details["reason"] == "review_evidence_missing"]
    assert held.day == 84 and held.details["missing"] == ["mri_result"]
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == referred_on and ref.details["criteria"] == ["persistent_pain"]
    if revision >= 9:
        assert "decided on day 100 when the evidence arrived" in ref.rationale


@pytest.mark.parametrize("revision, referred", [(8, False), (9, True)])
def test_a_held_review_whose_mri_came_during_a_pause_past_day_182_is_not_lost(definition, revision, referred):
    """Paused on day 100, the MRI on day 150, resumed on day 190: revision 8 held the review through the pause
    and let it lapse on resume, past day 182 — the patient with NRS 7 and an osteoporotic MRI never referred."""
    w = held_for_the_mri(definition, revision, pause=100, mri=150, resume=190)
    assert [a.day for a in w.of("refer_vertebral_augmentation")] == ([150] if referred else [])
    assert ("twelve_week_review:lapsed" in note_ids(w)) is not referred


def test_a_held_review_still_lapses_at_its_limit_during_a_pause(definition):
    w = held_for_the_mri(definition, 9, pause=100, mri=200, resume=210)
    assert not w.of("refer_vertebral_augmentation")
    (lapsed,) = [n for n in w.notes if n.id == "twelve_week_review:lapsed"]
    assert lapsed.day < 183 and "still without an MRI result saying osteoporotic after day 182" in lapsed.text


def test_a_review_a_pause_kept_from_coming_due_says_when_it_was_reached(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(70, 6)
    w.clinician(80, "pause")
    w.pain(88, 6)
    w.until(90)
    w.clinician(90, "resume")
    w.until(91)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert ref.day == 90 and "12-week review (day 84, reached on day 90 when the pathway resumed)" in ref.rationale


def test_a_referral_with_a_neurological_deficit_open_says_the_spine_surgeon_weighs_it(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.event(50, type="neuro", deficit=True)
    w.pain(80, 7)
    w.until(85)
    (ref,) = w.of("refer_vertebral_augmentation")
    assert "A neurological deficit is open (since day 50; urgent spine-surgery referral)" in ref.rationale
    cleared = confirmed(Walk(definition, pain_nrs=6))
    cleared.event(50, type="neuro", deficit=True)
    cleared.event(60, type="neuro", deficit=False)
    cleared.pain(80, 7)
    cleared.until(85)
    assert "neurological deficit" not in cleared.of("refer_vertebral_augmentation")[0].rationale


@pytest.mark.parametrize("revision, handed_over", [(8, True), (9, False)])
def test_a_withdrawal_hands_over_no_order_its_performer_refused(definition, revision, handed_over):
    """The bisphosphonate's task was rejected (an allergy): it is no open order for the care team to own."""
    w = Walk(definition, revision=revision)
    w.facts.noted.append("task-refused:prescribe_bisphosphonate")
    w.clinician(5, "withdraw")
    (handover,) = [a for a in w.of("request_clinician_review") if a.details["reason"] == "withdrawal_handover"]
    assert ("prescribe_bisphosphonate" in [o["id"] for o in handover.details["open_orders"]]) is handed_over
    assert "prescribe_calcium_vitamin_d" in [o["id"] for o in handover.details["open_orders"]]
