"""The incremental core answers as a cold one does: the kept views (folded pain reports, the
timers, open orders) and the decision steps found quiet (pathway/quiet.py) never change a decision.

Each decision over a long-lived facts object, caches warm, is compared with the same decision over
a fresh copy of the facts, with no cache at all — for varied synthetic patients (every action kind
of the cohort model) and for a report that arrives out of day order."""

from __future__ import annotations

from collections import Counter

import pytest

import cohort.engine
from cohort.engine import run_patient
from cohort.model import load_model
from cohort.patients import draw_patient
from pathway.contract import MobilityEvent, parse_event
from pathway.decisions import Decision, decide, next_due
from pathway.facts import Observation, PatientFacts, latest_pain, pain_flares, pain_reports
from pathway.results import open_orders
from tests.helpers import ROOT
from tests.unit.walk import Walk

PATIENTS = 60


def cold(facts: PatientFacts) -> PatientFacts:
    """The same facts in a new object: every view derived afresh."""
    return PatientFacts(enrollment=facts.enrollment, observations=list(facts.observations),
                        taken=dict(facts.taken), noted=list(facts.noted))


def test_warm_decisions_equal_cold_ones_for_varied_patients(definition, monkeypatch):
    model = load_model(ROOT / "seeds" / "cohorts" / "default.json")
    compared, kinds = Counter[str](), Counter[str]()

    def checked(defn, facts: PatientFacts, now: float) -> Decision:
        fresh = cold(facts)
        warm = decide(defn, facts, now)
        assert warm == decide(defn, fresh, now), f"day {now}"
        assert next_due(defn, facts, now) == next_due(defn, fresh, now)
        assert open_orders(facts) == open_orders(fresh)
        compared["decisions"] += 1
        compared["quiet"] += not (warm.actions or warm.notes)
        kinds.update(a.kind for a in warm.actions)
        return warm

    monkeypatch.setattr(cohort.engine, "decide", checked)
    for index in range(PATIENTS):
        run_patient(definition, draw_patient(model, 1, index), model.horizon_days)
    assert compared["decisions"] > 50 * PATIENTS and compared["quiet"] > compared["decisions"] // 2
    assert {"offer_nerve_block", "refer_physical_therapy", "refer_vertebral_augmentation",
            "order_adjacent_fracture_screening", "outreach_missed_follow_up"} <= set(kinds)


@pytest.mark.parametrize("late_day", [3.0, 20.0])
def test_a_report_arriving_out_of_day_order_refolds_the_pain_views(definition, late_day):
    walk = Walk(definition, pain_nrs=3)
    for day, nrs in ((7, 3), (14, 2), (28, 6)):
        walk.facts.observations.append(Observation(day=day, event=parse_event({"type": "pain", "nrs": nrs})))
        walk.at(day)
    assert pain_reports(walk.facts)[-1] == (28, 6)
    late = parse_event({"type": "pain", "nrs": 9, "observed_at": None})
    walk.facts.observations.append(Observation(day=late_day, event=late))
    fresh = cold(walk.facts)
    assert pain_reports(walk.facts) == pain_reports(fresh)
    assert (late_day, 9) in pain_reports(walk.facts)
    assert pain_flares(definition, walk.facts) == pain_flares(definition, fresh)
    assert decide(definition, walk.facts, 30) == decide(definition, fresh, 30)


def test_latest_pain_is_the_last_folded_report_in_and_out_of_day_order(definition):
    walk = Walk(definition, pain_nrs=7)
    assert latest_pain(walk.facts) == pain_reports(walk.facts)[-1] == (0.0, 7)  # the enrollment score
    for day, nrs in ((7, 5), (14, 4), (10, 8)):  # the last one lands between the others
        walk.facts.observations.append(Observation(day=day, event=parse_event({"type": "pain", "nrs": nrs})))
        assert latest_pain(walk.facts) == pain_reports(walk.facts)[-1] == pain_reports(cold(walk.facts))[-1]
    assert latest_pain(walk.facts) == (14, 4)


def test_a_view_is_derived_again_only_when_a_class_it_reads_gains_an_observation(definition):
    facts = Walk(definition).facts
    derived = Counter[str]()

    def spells(f: PatientFacts) -> int:
        derived["spells"] += 1
        return len(f.of(MobilityEvent))

    def read() -> int:
        return facts.view("test-spells", spells, reads=(MobilityEvent,))

    def observe(day: float, **raw: object) -> None:
        facts.observations.append(Observation(day=day, event=parse_event(raw)))

    assert read() == 0 and read() == 0 and derived["spells"] == 1
    observe(1, type="pain", nrs=5)
    assert read() == 0 and derived["spells"] == 1  # a pain report: still current
    observe(2, type="mobility", bed_bound=True)
    assert read() == 1 and derived["spells"] == 2
    observe(3, type="mobility", bed_bound=False)
    facts.views()  # indexed by another reader: the mobility report is not the latest arrival at the next read
    observe(4, type="pain", nrs=4)
    observe(5, type="pain", nrs=3)
    assert facts.views().count == 5
    assert read() == 2 and derived["spells"] == 3
    observe(6, type="pain", nrs=2)
    facts.views()  # indexed by another reader first
    observe(7, type="pain", nrs=2)
    assert read() == 2 and derived["spells"] == 3
