"""The computable guideline: the seed loads, every threshold carries its section, a changed
threshold changes a decision, and an invalid definition is refused with a clear error."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from pathway.contract import ACTION_KINDS, Enrollment, parse_event
from pathway.decisions import decide
from pathway.facts import SETTLE, Observation, PatientFacts
from pathway.guideline import CURRENT_DEFINITION, SEEDS_DIR, load_definition

SEED = SEEDS_DIR / CURRENT_DEFINITION
GUIDELINE = SEEDS_DIR / "guideline_000_2ff3434920028676.txt"
MRI = (3, {"type": "mri", "etiology": "osteoporotic"})  # PT and referrals need it from vcf-1.2


@pytest.fixture
def raw():
    """A fresh copy of the seed's JSON."""
    return json.loads(SEED.read_text(encoding="utf-8"))


def write(tmp_path, data) -> str:
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def kinds_at(defn, now: float, events=(), **enroll) -> list[str]:
    """Action kinds decided when the alarm for ``now`` rings, a second after it, over a fresh
    patient's facts (one decision pass)."""
    patient = {"id": "pt-g01", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 6, **enroll}
    facts = PatientFacts(enrollment=Enrollment.model_validate(patient),
                         observations=[Observation(day=d, event=parse_event(e)) for d, e in events])
    return [a.kind for a in decide(defn, facts, now + SETTLE).actions]


def test_the_seed_loads(definition, raw):
    assert definition.version == raw["version"] and definition.version.startswith("vcf-")
    assert (SEEDS_DIR / definition.guideline_file).is_file()
    assert set(definition.actions) == set(ACTION_KINDS)
    assert load_definition(SEED) == definition


def test_the_seed_values_are_those_of_the_clinical_reference(definition):
    r = definition.rules
    reference = {
        "acute_phase_end_day": 42, "review_day": 84, "persistent_pain_nrs": 5, "resolved_pain_nrs": 3,
        "severe_pain_nrs": 7, "calcitonin_max_fracture_age_days": 5, "calcitonin_stop_day": 28,
        "nerve_block_from_day": 7, "nerve_block_until_day": 42, "physical_therapy_from_day": 7,
        "physical_therapy_pain_nrs": 4, "genant_grade_1_pct": 20, "genant_grade_2_pct": 25,
        "genant_grade_3_pct": 40, "kyphoplasty_min_genant_grade": 2, "progression_relative_height_loss": 0.2,
        "kyphosis_progression_deg": 5, "flare_rise_nrs": 3, "flare_baseline_max_nrs": 4,
        "immobilization_max_days": 7, "outreach_after_days": 14, "escalate_after_days": 28,
        "osteoporosis_t_score": -2.5, "completion_day": 365,
    }  # fmt: skip
    assert {name: getattr(r, name).value for name in reference} == reference
    assert definition.schedules.radiograph_days.days == [14, 42, 84]
    assert definition.schedules.screening_days.days == [182, 365]
    # A neurological deficit makes the enrollment MRI urgent too (safety rules, vcf-1.2).
    assert set(definition.urgent_mri_red_flags) == {"history_of_cancer", "fever_or_infection",
                                                    "unexplained_weight_loss", "neuro_deficit"}


def test_every_rule_schedule_and_action_names_a_guideline_section(definition):
    guideline = GUIDELINE.read_text(encoding="utf-8")
    rules = [getattr(definition.rules, n) for n in type(definition.rules).model_fields]
    safety = definition.safety.rules
    rules += [getattr(safety, n) for n in type(safety).model_fields]
    cited = [*(rule for rule in rules if rule is not None),
             definition.schedules.radiograph_days, definition.schedules.screening_days,
             *definition.actions.values()]
    for item in cited:
        assert item.section.strip()
        assert item.cite().startswith(f"Guideline: {item.section}")
        assert all(ref in definition.references for ref in item.refs)
        # The section names headings of the guideline text (the safety net is marked as beyond it).
        if "beyond the guideline" not in item.section:
            heading = item.section.split(" / ")[0].split(" (")[0]
            assert heading in guideline, item.section


def test_unsourced_defaults_are_marked_verify(definition):
    r = definition.rules
    for name in ("severe_pain_nrs", "physical_therapy_pain_nrs", "kyphosis_progression_deg", "flare_rise_nrs",
                 "immobilization_max_days", "outreach_after_days", "escalate_after_days"):
        assert getattr(r, name).verify and getattr(r, name).cite().endswith("(verify)")
    assert definition.schedules.radiograph_days.cite().endswith("(verify)")
    assert not r.review_day.verify and "(verify)" not in r.review_day.cite()
    assert "ref. 1" in r.review_day.cite()


@pytest.mark.parametrize("path, value, now, events, enroll, kind, before, after", [
    (("rules", "severe_pain_nrs"), 6, 0, (), {"pain_nrs": 6}, "prescribe_opioid_short_course", False, True),
    (("rules", "calcitonin_max_fracture_age_days"), 7, 0, (), {"onset_days_before_enrollment": 7},
     "start_calcitonin", False, True),
    (("rules", "persistent_pain_nrs"), 4, 84, (MRI, (80, {"type": "pain", "nrs": 4})), {},
     "refer_vertebral_augmentation", False, True),
    (("rules", "review_day"), 90, 84, (MRI, (80, {"type": "pain", "nrs": 8})), {},
     "refer_vertebral_augmentation", True, False),
    (("rules", "physical_therapy_pain_nrs"), 5, 10, (MRI, (10, {"type": "pain", "nrs": 5})), {},
     "refer_physical_therapy", False, True),
    (("rules", "nerve_block_until_day"), 30, 35, ((35, {"type": "pain", "nrs": 8}),), {},
     "offer_nerve_block", True, False),
    (("rules", "outreach_after_days"), 10, 12, (), {}, "outreach_missed_follow_up", False, True),
    (("rules", "calcitonin_stop_day"), 21, 21, (), {}, "stop_calcitonin", False, True),
    (("schedules", "radiograph_days"), [7, 42, 84], 7, (), {}, "order_radiograph", False, True),
])  # fmt: skip
def test_a_changed_threshold_changes_the_decision(definition, raw, tmp_path, path, value, now, events,
                                                  enroll, kind, before, after):
    """The same patient and day, decided under the seed and under a copy with one value changed."""
    node = raw[path[0]][path[1]]
    node["days" if path[0] == "schedules" else "value"] = value
    changed = load_definition(write(tmp_path, raw))
    assert (kind in kinds_at(definition, now, events, **enroll)) is before
    assert (kind in kinds_at(changed, now, events, **enroll)) is after


def test_a_changed_threshold_shows_in_the_rationale(raw, tmp_path):
    raw["rules"]["severe_pain_nrs"]["value"] = 6
    raw["version"] = "vcf-1.1-test"
    defn = load_definition(write(tmp_path, raw))
    facts = PatientFacts(enrollment=Enrollment(id="pt-g02", fracture_level="L2", height_loss_pct=25, pain_nrs=6))
    (opioid,) = [a for a in decide(defn, facts, 0).actions if a.kind == "prescribe_opioid_short_course"]
    assert "threshold 6" in opioid.rationale and "vcf-1.1-test" in opioid.citation


def _drop_rule(d):
    del d["rules"]["review_day"]


def _drop_action(d):
    del d["actions"]["order_dxa"]


def _set(path, value):
    def apply(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return apply


@pytest.mark.parametrize("breakage, message", [
    (_drop_rule, "review_day"),
    (_drop_action, "no entry for order_dxa"),
    (_set(("rules", "genant_grade_2_pct", "value"), 45), "Genant grade boundaries must increase"),
    (_set(("rules", "genant_grade_1_pct", "value"), 25), "Genant grade boundaries must increase"),
    (_set(("rules", "outreach_after_days", "value"), 28), "outreach must come before escalation"),
    (_set(("rules", "review_day", "value"), 400), "the review must come after enrollment and before completion"),
    (_set(("rules", "review_day", "value"), 0), "the review must come after enrollment and before completion"),
    (_set(("schedules", "screening_days", "days"), [182, 400]),
     "schedules.screening_days: a day falls after completion"),
    (_set(("schedules", "radiograph_days", "days"), [-14, 42]), "greater than or equal to 1"),
    (_set(("schedules", "radiograph_days", "days"), [42, 14]), "each day once, in increasing order"),
    (_set(("schedules", "radiograph_days", "days"), [14, 14]), "each day once, in increasing order"),
    (_set(("rules", "nerve_block_until_day", "value"), 2), "the nerve-block window must open before it closes"),
    (_set(("safety", "rules", "opioid_stop_by_day", "value"), 3), "the opioid review must come by the stop day"),
    (_set(("schedules", "radiograph_days", "days"), []), "radiograph_days"),
    (_set(("rules", "severe_pain_nrs", "value"), "seven"), "severe_pain_nrs"),
    (_set(("rules", "severe_pain_nrs", "section"), None), "severe_pain_nrs.section"),
    (_set(("rules", "severe_pain_nrs", "colour"), "red"), "colour"),
    (_set(("rules", "not_a_rule"), {"value": 1, "unit": "x", "section": "y"}), "not_a_rule"),
    (_set(("actions", "order_pizza"), {"title": "t", "section": "s", "resource": "Task"}), "order_pizza"),
    (_set(("actions", "order_dxa", "resource"), "Observation"), "resource"),
    (_set(("urgent_mri_red_flags",), ["smoker"]), "urgent_mri_red_flags"),
    (_set(("version",), ""), "version"),
])  # fmt: skip
def test_invalid_definitions_are_refused(raw, tmp_path, breakage, message):
    broken = copy.deepcopy(raw)
    breakage(broken)
    with pytest.raises(ValidationError) as caught:
        load_definition(write(tmp_path, broken))
    assert message in str(caught.value)


def test_a_definition_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        load_definition(path)


def test_the_definition_is_frozen(definition):
    with pytest.raises(ValidationError):
        definition.rules.severe_pain_nrs.value = 1  # type: ignore[misc]
