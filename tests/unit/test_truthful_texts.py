"""What the texts of actions and notes say is what happened to this patient: the contract's
rationale names the facts that made an action fire, and a note's text and citation say why."""

from __future__ import annotations

from tests.unit.test_safety_rules import note_ids, reviews
from tests.unit.walk import Walk, confirmed


def test_the_exit_review_says_calcitonin_was_stopped_only_when_it_ran(definition):
    running = Walk(definition)  # enrolled on the day of the fracture: calcitonin runs
    running.event(10, type="mri", etiology="malignant")
    (review,) = reviews(running, "pathologic_exit_medications")
    assert "Nothing is stopped automatically but calcitonin." in review.rationale

    never = Walk(definition, onset_days_before_enrollment=6)  # outside the window: never started
    never.event(10, type="mri", etiology="malignant")
    (review,) = reviews(never, "pathologic_exit_medications")
    assert "calcitonin was not started" in review.rationale and "but calcitonin" not in review.rationale

    finished = Walk(definition)
    finished.until(30)  # the course ended on day 28
    finished.event(30, type="mri", etiology="infection")
    assert "calcitonin was stopped on day 28" in reviews(finished, "pathologic_exit_medications")[0].rationale


def test_a_pathologic_mri_is_read_in_a_note_like_any_other(definition):
    w = Walk(definition)
    w.event(10, type="mri", etiology="malignant")
    (note,) = [n for n in w.notes if n.id == "mri:10:malignant"]
    assert "malignant (pathologic) fracture" in note.text and note.citation
    assert w.status == "exited"


def test_the_urgent_mri_names_every_red_flag_that_made_it_urgent(definition):
    w = Walk(definition, red_flags=["history_of_cancer", "neuro_deficit"])
    (mri,) = w.of("order_mri")
    assert mri.details["priority"] == "urgent"
    assert "history_of_cancer" in mri.rationale and "neurological deficit" in mri.rationale


def test_a_declined_referral_is_noted_with_the_criteria_who_declined_and_a_citation(definition):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.event(20, type="clinician", decision="decline_augmentation", reason="patient prefers not", author="dr-b")
    w.pain(80, 7)
    w.alarm(84)
    assert not w.of("refer_vertebral_augmentation")
    (note,) = [n for n in w.notes if n.id == "twelve_week_review:declined"]
    assert "latest pain NRS 7" in note.text and "dr-b on day 20" in note.text and "patient prefers not" in note.text
    assert note.citation


def test_kyphoplasty_for_a_progressive_deformity_says_so(definition):
    w = confirmed(Walk(definition, height_loss_pct=20))  # Genant grade 1
    w.event(40, type="radiograph", height_loss_pct=24)  # 20% relative growth: progressive
    w.pain(80, 3)
    w.alarm(84)
    (referral,) = w.of("refer_vertebral_augmentation")
    assert referral.details["suggested_procedure"] == "balloon_kyphoplasty"
    assert "balloon kyphoplasty suggested (Genant grade 1: height loss 24%, progressive deformity)" \
        in referral.rationale


def test_a_deformity_flag_after_the_referral_says_the_referral_was_made(definition):
    w = confirmed(Walk(definition, pain_nrs=8))
    w.pain(80, 7)
    w.alarm(84)
    assert w.of("refer_vertebral_augmentation")
    w.event(100, type="radiograph", height_loss_pct=31)
    (flag,) = w.of("flag_progressive_deformity")
    assert "the augmentation referral was already made on day 84" in flag.rationale
    assert "counts as" not in flag.rationale


def test_pt_after_a_neurological_hold_names_the_report_that_released_it(definition):
    w = confirmed(Walk(definition), day=2)
    w.event(5, type="neuro", deficit=True)
    w.pain(8, 3)
    assert "refer_physical_therapy:held:neuro" in note_ids(w)
    w.event(15, type="neuro", deficit=False)
    (pt,) = w.of("refer_physical_therapy")
    assert pt.day == 15 and "neurological deficit resolved (day 15)" in pt.rationale


def test_the_deformity_flag_carries_the_measurements_it_compared(definition):
    w = Walk(definition, height_loss_pct=25)
    w.event(40, type="radiograph", height_loss_pct=30)
    (flag,) = w.of("flag_progressive_deformity")
    assert flag.details == {"height_loss_pct": 30, "first_height_loss_pct": 25}

    k = Walk(definition)
    k.event(20, type="radiograph", height_loss_pct=25, kyphosis_deg=10)
    k.event(40, type="radiograph", height_loss_pct=25, kyphosis_deg=15)
    (flag,) = k.of("flag_progressive_deformity")
    assert flag.details == {"kyphosis_deg": 15, "first_kyphosis_deg": 10}


def test_a_withdrawal_during_a_pause_names_the_steps_it_held(definition):
    w = confirmed(Walk(definition))
    w.until(10)
    w.clinician(10, "pause")
    w.until(90)
    w.clinician(90, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    assert handover.details["steps_not_taken"] == [
        {"step": "order_radiograph", "scheduled_day": 14}, {"step": "order_radiograph", "scheduled_day": 42},
        {"step": "order_radiograph", "scheduled_day": 84}, {"step": "twelve_week_review", "scheduled_day": 84}]
    assert "follow-up radiograph (day 14)" in handover.rationale and "12-week review (day 84)" in handover.rationale


def test_a_withdrawal_on_schedule_names_no_step(definition):
    w = confirmed(Walk(definition))
    w.until(20)
    w.clinician(20, "withdraw")
    (handover,) = reviews(w, "withdrawal_handover")
    assert "steps_not_taken" not in handover.details and "never taken" not in handover.rationale


def test_notes_resting_on_an_unsourced_threshold_are_cited_verify(definition):
    """Safety rule 14: a note that names a local default (the kyphosis rise, the severe-pain cut-off)
    says "(verify)" in its citation, as the action on the same rule does."""
    w = Walk(definition, fracture_level="L2", pain_nrs=6)
    w.event(3, type="mri", etiology="osteoporotic")
    w.event(14, type="radiograph", height_loss_pct=25, kyphosis_deg=10)
    w.event(42, type="radiograph", height_loss_pct=25, kyphosis_deg=15)
    w.pain(80, 3)
    w.until(85)
    (review,) = [n for n in w.notes if n.id == "twelve_week_review:done"]
    assert "kyphosis" in review.text and "(verify)" in review.citation
    (flagged,) = [n for n in w.notes if n.id == "radiograph:42"]
    assert "progressive deformity flagged" in flagged.text and "(verify)" in flagged.citation
    (first,) = [n for n in w.notes if n.id == "radiograph:14"]
    assert "(verify)" not in first.citation  # read, nothing flagged

    settled = Walk(definition, fracture_level="L2", pain_nrs=6)
    settled.event(3, type="mri", etiology="osteoporotic")
    settled.pain(80, 3)
    settled.until(85)
    (review,) = [n for n in settled.notes if n.id == "twelve_week_review:done"]
    assert "(verify)" not in review.citation  # no criterion: nothing unsourced named

    thoracic = Walk(definition, fracture_level="T12", pain_nrs=6)
    thoracic.pain(10, 8)
    (note,) = [n for n in thoracic.notes if n.id == "offer_nerve_block:out_of_scope"]
    assert "(verify)" in note.citation


def test_a_nerve_block_offered_before_the_mri_says_a_pathologic_fracture_is_not_ruled_out(definition):
    pending = Walk(definition, fracture_level="L3", pain_nrs=8, red_flags=["fever_or_infection"])
    pending.pain(8, 9)
    (offer,) = pending.of("offer_nerve_block")
    assert "pathologic fracture (infection, malignancy) is not ruled out" in offer.rationale
    ruled_out = confirmed(Walk(definition, fracture_level="L3", pain_nrs=8))
    ruled_out.pain(8, 9)
    (offer,) = ruled_out.of("offer_nerve_block")
    assert "not ruled out" not in offer.rationale


def test_a_deficit_after_pt_was_referred_names_the_referral(definition):
    w = confirmed(Walk(definition, pain_nrs=6))
    w.pain(8, 3)
    w.event(20, type="neuro", deficit=True)
    (referral,) = w.of("refer_urgent_spine_surgery")
    assert "PT was referred on day 8: an open deficit holds PT" in referral.rationale
    before = confirmed(Walk(definition, pain_nrs=6))
    before.event(5, type="neuro", deficit=True)
    (referral,) = before.of("refer_urgent_spine_surgery")
    assert "PT was referred" not in referral.rationale
