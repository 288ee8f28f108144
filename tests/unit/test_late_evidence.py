"""Evidence that arrives after the day it was observed (decisions revision 3): a report or result
sent with an earlier ``observed_at`` — an imaging report written days after the film, a pain
score entered late. What is decided on it is dated when it is decided, windows that have closed
stay closed, and a clinician's decline that comes after the referral is refused with the reason."""

from __future__ import annotations

from pathway.decisions import decide
from pathway.facts import PatientFacts
from pathway.results import overdue_orders
from tests.unit.walk import Walk, confirmed, enrollment


def note_ids(w: Walk) -> list[str]:
    return [n.id for n in w.notes]


def test_a_severe_score_from_the_window_that_arrives_after_it_closed_makes_no_offer(definition):
    w = confirmed(Walk(definition))
    w.pain(20, 5)
    w.until(49)
    w.event(30, arrives=50, type="pain", nrs=8)
    assert not w.of("offer_nerve_block") and "offer_nerve_block:expired" not in note_ids(w)
    (late,) = [n for n in w.notes if n.id == "offer_nerve_block:reported_late"]
    assert late.day == 50 and "NRS 8 on day 30" in late.text and "reported on day 50" in late.text
    w.event(40, arrives=55, type="pain", nrs=9)  # the first severe report decided it: no second note
    assert note_ids(w).count("offer_nerve_block:reported_late") == 1


def test_a_severe_score_that_arrives_late_but_within_the_window_is_offered_when_it_arrives(definition):
    w = confirmed(Walk(definition))
    w.event(20, arrives=25, type="pain", nrs=8)
    (offer,) = w.of("offer_nerve_block")
    assert offer.day == 25 and "NRS 8 on day 20" in offer.rationale


def test_revision_2_offered_on_a_late_score_and_dated_the_offer_on_its_day(definition):
    w = confirmed(Walk(definition, revision=2))
    w.until(49)
    w.event(30, arrives=50, type="pain", nrs=8)
    assert [a.day for a in w.of("offer_nerve_block")] == [30]


def test_a_late_film_is_flagged_and_its_mri_ordered_on_the_day_it_arrives(definition):
    w = confirmed(Walk(definition))
    w.until(15)
    w.event(14, arrives=17, type="radiograph", height_loss_pct=25, new_fracture_level="L3")
    (flag,) = w.of("flag_new_vertebral_fracture")
    (mri,) = [a for a in w.of("order_mri") if a.id == "order_mri:L3"]
    assert flag.day == mri.day == 17 and "Radiograph on day 14" in flag.rationale
    assert [(n.id, n.day) for n in w.notes if n.id.startswith("radiograph:")] == [("radiograph:14", 17)]
    # its result is overdue 14 days after it was ordered, not after the film was taken
    assert not [o for o in overdue_orders(definition, w.facts, 30.5) if o.order.action_id == "order_mri:L3"]
    assert [o for o in overdue_orders(definition, w.facts, 31.5) if o.order.action_id == "order_mri:L3"]


def test_a_flare_found_on_a_late_score_is_screened_from_the_day_it_arrives(definition):
    w = confirmed(Walk(definition))
    w.pain(20, 2)
    w.until(99)
    w.event(60, arrives=100, type="pain", nrs=7)
    (screening,) = [a for a in w.of("order_adjacent_fracture_screening") if a.details["trigger"] == "pain_flare"]
    assert screening.day == 100 and screening.id == "order_adjacent_fracture_screening:flare:60"
    assert not [o for o in overdue_orders(definition, w.facts, 100.5) if o.order.action_id == screening.id]


def test_enrollment_actions_stay_at_day_0_whenever_they_are_decided(definition):
    facts = PatientFacts(enrollment=enrollment())
    decision = decide(definition, facts, 30)
    assert decision.actions and {a.day for a in decision.actions if a.id in
                                 {"prescribe_first_line_analgesia", "order_mri", "order_dxa"}} == {0}


def test_a_decline_after_the_referral_is_refused_naming_it(definition):
    w = confirmed(Walk(definition))
    w.pain(80, 7)
    w.until(84)
    assert w.of("refer_vertebral_augmentation")
    w.clinician(90, "decline_augmentation")
    assert w.rejected == ["decision: the augmentation referral was already made on day 84; it is an open order: "
                          "the care team cancels it"]
    before = confirmed(Walk(definition))
    before.clinician(60, "decline_augmentation")  # before any referral: it stands
    assert before.rejected == []
    old = confirmed(Walk(definition, revision=2))
    old.pain(80, 7)
    old.until(84)
    old.clinician(90, "decline_augmentation")
    assert old.rejected == []


def test_every_radiograph_result_is_read_in_a_note(definition):
    w = confirmed(Walk(definition))
    w.event(15, type="radiograph", height_loss_pct=25, kyphosis_deg=10)
    w.event(43, type="radiograph", height_loss_pct=31)
    plain, grown = [n for n in w.notes if n.id.startswith("radiograph:")]
    assert (plain.id, plain.text) == ("radiograph:15", "Radiograph read: height loss 25%, kyphosis 10°.")
    assert grown.text == "Radiograph read: height loss 31%; progressive deformity flagged."
    assert w.of("flag_progressive_deformity")
    old = confirmed(Walk(definition, revision=2))
    old.event(15, type="radiograph", height_loss_pct=25)
    assert not [n for n in old.notes if n.id.startswith("radiograph:")]


def test_a_late_subsided_score_refers_to_pt_only_if_pain_has_not_risen_since(definition):
    w = confirmed(Walk(definition))
    w.pain(20, 6)
    w.event(9, arrives=30, type="pain", nrs=3)  # subsided on day 9, but 6 on day 20
    assert not w.of("refer_physical_therapy")
    (held,) = [n for n in w.notes if n.id == "refer_physical_therapy:held:pain"]
    assert held.day == 30 and "the latest report, NRS 6 on day 20, is above 4" in held.text
    w.pain(35, 3)
    assert [a.day for a in w.of("refer_physical_therapy")] == [35]
    old = confirmed(Walk(definition, revision=2))
    old.pain(20, 6)
    old.event(9, arrives=30, type="pain", nrs=3)
    assert [a.day for a in old.of("refer_physical_therapy")] == [9]


def test_a_deficit_reported_after_a_later_report_said_none_is_referred_naming_both(definition):
    w = Walk(definition)
    w.event(10, type="neuro", deficit=False)
    w.event(3, arrives=12, type="neuro", deficit=True)
    (referral,) = w.of("refer_urgent_spine_surgery")
    assert referral.day == 12 and referral.id == "refer_urgent_spine_surgery:3"
    assert "Neurological deficit reported on day 3" in referral.rationale
    assert "A report on day 10 says no deficit: evaluate the episode." in referral.rationale
