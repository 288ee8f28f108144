"""Closed-loop results (pure): which imaging orders still wait, and when they are overdue."""

from __future__ import annotations

from pathway.contract import Enrollment, parse_event
from pathway.facts import GRACE, Observation, PatientFacts
from pathway.results import (
    observe,
    open_orders,
    overdue_checks,
    overdue_note_id,
    overdue_orders,
    refusal_alert,
    refusal_note_id,
    result_due_day,
    watched_after_completion,
)


def facts(taken: dict[str, float], results: list[tuple[float, dict]]) -> PatientFacts:
    return PatientFacts(
        enrollment=Enrollment(id="pt-r", fracture_level="L2", height_loss_pct=25, pain_nrs=8),
        observations=[Observation(day=d, event=parse_event(e)) for d, e in results], taken=taken)


FILM = {"type": "radiograph", "height_loss_pct": 25}


def test_a_result_answers_an_open_order_of_its_kind_placed_by_its_day():
    f = facts({"order_mri": 0, "order_dxa": 0, "order_radiograph:day-14": 14, "order_radiograph:day-42": 42},
              [(20, FILM), (3, {"type": "mri", "etiology": "osteoporotic"})])
    assert [o.action_id for o in open_orders(f)] == ["order_dxa", "order_radiograph:day-42"]


def arriving(taken: dict[str, float], results: list[tuple[float, dict]], revision: int = 6) -> PatientFacts:
    """Facts whose orders are taken and results observed as they arrive, in day order."""
    f = facts({}, [])
    for day, result in results:
        for action_id, placed in taken.items():
            if placed <= day:
                f.taken.setdefault(action_id, placed)
        observe(f, day, parse_event(result), revision)
    f.taken.update({a: d for a, d in taken.items() if a not in f.taken})
    return f


def test_a_film_answers_the_newest_order_placed_by_its_day_from_revision_6():
    """The week-2 film never taken stays the one without a result: the film after the week-6 order
    answers that order (before revision 6 it answered the oldest, and the week-6 order waited)."""
    taken = {"order_radiograph:day-14": 14, "order_radiograph:day-42": 42, "order_radiograph:day-84": 84}
    f = arriving(taken, [(43, FILM), (85, FILM)])
    assert [o.answers for o in f.observations] == ["order_radiograph:day-42", "order_radiograph:day-84"]
    assert [o.action_id for o in open_orders(f)] == ["order_radiograph:day-14"]
    before = arriving(taken, [(43, FILM), (85, FILM)], revision=5)
    assert [o.answers for o in before.observations] == [None, None]
    assert [o.action_id for o in open_orders(before)] == ["order_radiograph:day-84"]


def test_a_result_keeps_the_order_it_answered_as_it_arrived():
    """An order placed later, even dated the same instant, never takes a result already read."""
    f = arriving({"order_radiograph:day-14": 14}, [(42, FILM)])
    f.taken["order_radiograph:day-42"] = 42  # the alarm a second after the film: dated the same day
    assert f.observations[0].answers == "order_radiograph:day-14"
    assert [o.action_id for o in open_orders(f)] == ["order_radiograph:day-42"]


def test_a_result_no_order_waits_for_answers_none():
    f = arriving({"order_radiograph:day-14": 14}, [(10, FILM)])
    assert f.observations[0].answers == ""
    assert [o.action_id for o in open_orders(f)] == ["order_radiograph:day-14"]


def test_a_result_before_any_order_answers_none():
    f = facts({"order_radiograph:day-14": 14}, [(10, FILM)])
    assert [o.action_id for o in open_orders(f)] == ["order_radiograph:day-14"]


def test_screening_films_and_follow_up_films_share_the_radiograph_queue():
    taken = {"order_radiograph:day-84": 84, "order_adjacent_fracture_screening:day-182": 182}
    assert [o.action_id for o in open_orders(arriving(taken, [(190, FILM)]))] == ["order_radiograph:day-84"]
    assert [o.action_id for o in open_orders(arriving(taken, [(190, FILM)], revision=5))] == \
        ["order_adjacent_fracture_screening:day-182"]


def test_overdue_only_after_more_than_the_limit(definition):
    f = facts({"order_dxa": 0}, [])
    assert overdue_orders(definition, f, 14) == []
    assert [o.order.action_id for o in overdue_orders(definition, f, 14.01)] == ["order_dxa"]
    assert overdue_checks(definition, f, 1) == [14 + GRACE]


def test_a_version_without_the_rule_never_escalates(definition):
    data = definition.model_dump()
    data["rules"]["result_overdue_days"] = None
    old = type(definition).model_validate(data)
    f = facts({"order_dxa": 0}, [])
    assert overdue_orders(old, f, 100) == [] and overdue_checks(old, f, 1) == []


def test_a_refused_order_waits_for_no_result_and_is_never_overdue(definition):
    f = facts({"order_dxa": 0, "order_radiograph:day-14": 14}, [])
    f.noted.append(refusal_note_id("order_dxa"))
    assert [o.action_id for o in open_orders(f)] == ["order_radiograph:day-14"]
    assert [o.order.action_id for o in overdue_orders(definition, f, 60)] == ["order_radiograph:day-14"]
    assert overdue_checks(definition, f, 1) == [14 + 14 + GRACE]
    # The next film answers the next order, not the refused one.
    f2 = facts({"order_radiograph:day-14": 14, "order_radiograph:day-42": 42}, [(50, FILM)])
    f2.noted.append(refusal_note_id("order_radiograph:day-14"))
    assert open_orders(f2) == []


def test_what_a_refusal_tells_the_care_team():
    imaging = refusal_alert("order_mri", "rejected", "scanner down", 2)
    assert imaging is not None and "overdue-result clock is stopped" in imaging.rationale
    assert "scanner down" in imaging.rationale
    referral = refusal_alert("refer_physical_therapy", "failed", "", 30)
    assert referral is not None and "will not be seen" in referral.rationale
    assert refusal_alert("prescribe_first_line_analgesia", "rejected", "", 1) is None
    assert refusal_alert("order_mri", "cancelled", "", 1) is None
    named = refusal_alert("order_dxa", "failed", "scanner down", 4, title="Bone density scan (DXA)")
    assert named is not None and named.title == "Order failed: Bone density scan (DXA)"
    assert '"Bone density scan (DXA)" was failed' in named.rationale and "order_dxa" not in named.rationale


def test_at_completion_the_results_still_awaited_and_not_escalated_are_watched(definition):
    f = facts({"order_mri": 0, "order_dxa": 0, "order_adjacent_fracture_screening:day-182": 182,
               "order_adjacent_fracture_screening:day-365": 365, "order_radiograph:day-14": 14},
              [(3, {"type": "mri", "etiology": "osteoporotic"})])
    f.noted += [overdue_note_id("order_dxa"), refusal_note_id("order_radiograph:day-14")]
    watched = watched_after_completion(definition, f)
    # The DXA was escalated already and the refused film waits for nothing: the screenings are left.
    assert [w.order.action_id for w in watched] == ["order_adjacent_fracture_screening:day-182",
                                                    "order_adjacent_fracture_screening:day-365"]
    assert [result_due_day(w) for w in watched] == [182 + 14 + GRACE, 365 + 14 + GRACE]


def test_an_urgent_mri_still_awaited_at_completion_is_due_sooner(definition):
    f = PatientFacts(enrollment=Enrollment(id="pt-r", fracture_level="L2", height_loss_pct=25, pain_nrs=8,
                                           red_flags=["history_of_cancer"]), taken={"order_mri": 0})
    (watched,) = watched_after_completion(definition, f)
    assert watched.rule.value == 3 and result_due_day(watched) == 3 + GRACE


def test_a_result_naming_its_order_fulfils_that_order():
    """A report's basedOn (``fulfils``): the enrollment MRI, though a newer MRI order waits too."""
    f = facts({"order_mri": 0, "order_mri:T12": 15}, [])
    named = observe(f, 20, parse_event({"type": "mri", "etiology": "osteoporotic", "fulfils": "order_mri"}))
    assert named.answers == "order_mri"
    assert [o.action_id for o in open_orders(f)] == ["order_mri:T12"]
    again = observe(f, 21, parse_event({"type": "mri", "etiology": "osteoporotic", "fulfils": "order_mri"}))
    assert again.answers == ""  # that order no longer waits: the result fulfils none
    assert [o.action_id for o in open_orders(f)] == ["order_mri:T12"]


def test_films_on_the_scheduled_days_answer_their_orders_from_revision_7(definition):
    """A scenario's film of day 14 comes a second before the week-2 order its alarm places: from revision 7
    it is that order's result, so no order is left open to escalate (before, each order waited for the
    next film and the last one escalated)."""
    from pathway.results import ADOPT_WITHIN
    from tests.unit.walk import Walk

    def walk(revision: int) -> Walk:
        w = Walk(definition, revision=revision)
        w.event(3, type="mri", etiology="osteoporotic")
        w.event(5, type="dxa", t_score=-2.6)
        for day in (14, 42, 84):
            w.until(day - 0.5)  # the alarms before; the film then comes at the order's instant, before it
            w.event(day, type="radiograph", height_loss_pct=25)
        w.until(100)
        return w

    now = walk(7)
    assert [o.answers for o in now.facts.observations if o.event.type == "radiograph"] == [
        "order_radiograph:day-14", "order_radiograph:day-42", "order_radiograph:day-84"]
    assert open_orders(now.facts) == [] and overdue_orders(definition, now.facts, 100) == []
    before = walk(6)
    assert [o.action_id for o in open_orders(before.facts)] == ["order_radiograph:day-84"]
    assert [o.order.action_id for o in overdue_orders(definition, before.facts, 100, 6)] == ["order_radiograph:day-84"]
    assert ADOPT_WITHIN < 2 / 86400  # the instant only: a film of the day before is not the order's


def test_a_film_before_the_instant_or_naming_its_order_is_not_adopted(definition):
    from tests.unit.walk import Walk

    w = Walk(definition)
    w.event(13.9, type="radiograph", height_loss_pct=25)  # hours before the week-2 order
    w.until(14.5)
    w.event(42, type="radiograph", height_loss_pct=25, fulfils="order_radiograph:day-14")
    w.until(42.5)
    films = [o for o in w.facts.observations if o.event.type == "radiograph"]
    assert [o.answers for o in films] == ["", "order_radiograph:day-14"]
    assert [o.action_id for o in open_orders(w.facts) if o.kind == "order_radiograph"] == ["order_radiograph:day-42"]


def test_a_film_taken_while_a_pause_held_its_order_is_that_orders_result(definition):
    """Revision 7: the week-6 film taken on day 42 during a pause answers the week-6 order placed on resume
    (the order is not left open, to escalate on day 74 as if no film had come)."""
    from tests.unit.walk import Walk

    w = Walk(definition)
    w.event(3, type="mri", etiology="osteoporotic")
    w.event(15, type="radiograph", height_loss_pct=25)
    w.clinician(40, "pause")
    w.event(42, type="radiograph", height_loss_pct=25)
    w.event(50, type="radiograph", height_loss_pct=26)  # the newest film since its day is the order's
    w.clinician(60, "resume")
    w.until(61)
    films = [o.answers for o in w.facts.observations if o.event.type == "radiograph"]
    assert films == ["order_radiograph:day-14", "", "order_radiograph:day-42"]
    assert not [o for o in open_orders(w.facts) if o.kind == "order_radiograph"]
    before = Walk(definition, revision=6)
    before.event(3, type="mri", etiology="osteoporotic")
    before.clinician(40, "pause")
    before.event(42, type="radiograph", height_loss_pct=25)
    before.clinician(60, "resume")
    before.until(61)
    assert [o.action_id for o in open_orders(before.facts) if o.kind == "order_radiograph"] == [
        "order_radiograph:day-14+42"]


def test_a_film_at_the_instant_of_a_scheduled_order_is_that_orders_even_with_an_older_one_open(definition):
    """Revision 7: the week-2 film never taken stays the one without a result; the film of day 42 is the
    week-6 order's, placed a second after it (before, it answered the week-2 order and week 6 escalated)."""
    from tests.unit.walk import Walk

    def films(revision: int) -> tuple[list[str | None], list[str]]:
        w = Walk(definition, revision=revision)
        w.event(3, type="mri", etiology="osteoporotic")
        w.until(41)
        w.event(42, type="radiograph", height_loss_pct=25)
        w.until(43)
        answers = [o.answers for o in w.facts.observations if o.event.type == "radiograph"]
        return answers, [o.action_id for o in open_orders(w.facts) if o.kind == "order_radiograph"]

    assert films(7) == (["order_radiograph:day-42"], ["order_radiograph:day-14"])
    assert films(6) == (["order_radiograph:day-14"], ["order_radiograph:day-42"])


def test_a_film_naming_the_order_placed_at_its_instant_is_that_orders(definition):
    from tests.unit.walk import Walk

    w = Walk(definition)
    w.until(13)
    w.event(14, type="radiograph", height_loss_pct=25, fulfils="order_radiograph:day-14")
    w.until(15)
    assert [o.answers for o in w.facts.observations] == ["order_radiograph:day-14"]
    assert not [o for o in open_orders(w.facts) if o.kind == "order_radiograph"]


def test_a_flare_screening_and_the_week_6_order_each_take_a_film_of_their_instant(definition):
    """Two films on day 42: one for the flare screening ordered at that instant (it waits for it, so it
    takes the first), one for the week-6 order placed a second later. Neither order escalates."""
    from tests.unit.walk import Walk

    w = Walk(definition, pain_nrs=6)
    w.event(3, type="mri", etiology="osteoporotic")
    w.pain(10, 2)
    w.until(14.5)
    w.event(15, type="radiograph", height_loss_pct=25)
    w.until(41)
    w.pain(42, 6)  # 4 above the lowest, 2: a flare, screened at once
    w.event(42, type="radiograph", height_loss_pct=25)
    w.event(42, type="radiograph", height_loss_pct=25)
    w.until(43)
    films = [o.answers for o in w.facts.observations if o.event.type == "radiograph"]
    assert films == ["order_radiograph:day-14", "order_adjacent_fracture_screening:flare:42", "order_radiograph:day-42"]
    assert not [o for o in open_orders(w.facts) if o.kind != "order_dxa"]


def test_a_film_while_a_pause_holds_a_scheduled_order_is_kept_for_it_not_an_older_order(definition):
    """The week-2 film never taken stays the one without a result: the film of day 45, taken while a pause
    held the week-6 order, is that order's once it is placed on resume (revision 7)."""
    from tests.unit.walk import Walk

    w = Walk(definition)
    w.event(3, type="mri", etiology="osteoporotic")
    w.until(29)
    w.clinician(30, "pause")
    w.event(45, type="radiograph", height_loss_pct=25)
    w.clinician(60, "resume")
    w.until(61)
    assert [o.answers for o in w.facts.observations if o.event.type == "radiograph"] == ["order_radiograph:day-42"]
    assert [o.action_id for o in open_orders(w.facts) if o.kind == "order_radiograph"] == ["order_radiograph:day-14"]


def test_each_film_of_one_instant_is_read_in_a_note_of_its_own(definition):
    from tests.unit.walk import Walk

    w = Walk(definition, height_loss_pct=25)
    w.event(14, type="radiograph", height_loss_pct=26)
    w.event(14, type="radiograph", height_loss_pct=31)
    reads = {n.id: n.text for n in w.notes if n.id.startswith("radiograph:")}
    assert reads == {"radiograph:14": "Radiograph read: height loss 26%.",
                     "radiograph:14:2": "Radiograph read: height loss 31%; progressive deformity flagged."}
