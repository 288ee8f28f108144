"""Validation of the contract (docs/contract.md): every field's range and type, unknown
fields and event types, scenario rules; each error names the field."""

from __future__ import annotations

import pytest

from pathway.contract import (
    ACTION_KINDS,
    EVENT_TYPES,
    FRACTURE_LEVELS,
    MAX_ERRORS,
    ContractError,
    control_character,
    parse_enrollment,
    parse_event,
    parse_scenario,
)

PATIENT = {"id": "pt-0001", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8,
           "onset_days_before_enrollment": 3, "red_flags": []}
VALID_EVENTS = {
    "pain": {"type": "pain", "nrs": 5},
    "mri": {"type": "mri", "etiology": "osteoporotic"},
    "radiograph": {"type": "radiograph", "height_loss_pct": 27.5, "kyphosis_deg": 12, "new_fracture_level": "L1"},
    "dxa": {"type": "dxa", "t_score": -2.7},
    "mobility": {"type": "mobility", "bed_bound": True},
    "pulmonary": {"type": "pulmonary", "dysfunction": False},
    "neuro": {"type": "neuro", "deficit": True},
    "side_effect": {"type": "side_effect", "drug": "calcitonin", "effect": "mild dizziness"},
    "clinician": {"type": "clinician", "decision": "pause", "reason": "admitted elsewhere", "author": "dr-a"},
}


def errors_of(parse, raw) -> list[str]:
    with pytest.raises(ContractError) as caught:
        parse(raw)
    assert str(caught.value) == "; ".join(caught.value.errors)
    return caught.value.errors


def fields_of(errors: list[str]) -> list[str]:
    return [line.split(":", 1)[0] for line in errors]


def scenario(**overrides):
    return {"name": "s", "patient": dict(PATIENT), "events": [], "until_day": 120, **overrides}


# --- Enrollment -----------------------------------------------------------------------------------

def test_the_contract_example_enrolls_with_defaults():
    e = parse_enrollment(PATIENT)
    assert (e.id, e.fracture_level, e.height_loss_pct, e.pain_nrs) == ("pt-0001", "L2", 25, 8)
    minimal = parse_enrollment({k: PATIENT[k] for k in ("id", "fracture_level", "height_loss_pct", "pain_nrs")})
    assert minimal.onset_days_before_enrollment == 0 and minimal.red_flags == []


@pytest.mark.parametrize("field, value", [
    ("id", "a"), ("id", "x" * 64), ("id", "pt.01_A-9"),
    ("height_loss_pct", 0), ("height_loss_pct", 100), ("height_loss_pct", 12.5),
    ("pain_nrs", 0), ("pain_nrs", 10),
    ("onset_days_before_enrollment", 0), ("onset_days_before_enrollment", 400),
    ("red_flags", ["history_of_cancer", "fever_or_infection", "neuro_deficit", "unexplained_weight_loss"]),
])  # fmt: skip
def test_enrollment_accepts_the_edges(field, value):
    assert getattr(parse_enrollment({**PATIENT, field: value}), field) == value


@pytest.mark.parametrize("level", FRACTURE_LEVELS)
def test_every_thoracic_and_lumbar_level_is_accepted(level):
    assert parse_enrollment({**PATIENT, "fracture_level": level}).fracture_level == level


def test_the_levels_are_t1_to_l5():
    assert FRACTURE_LEVELS == tuple([f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)])


@pytest.mark.parametrize("field, value", [
    ("id", ""), ("id", "x" * 65), ("id", "pt 01"), ("id", "pt/01"), ("id", "Jöns"), ("id", 17),
    ("fracture_level", "T0"), ("fracture_level", "T13"), ("fracture_level", "L6"), ("fracture_level", "C5"),
    ("fracture_level", "l2"), ("fracture_level", 2),
    ("height_loss_pct", -0.1), ("height_loss_pct", 100.1), ("height_loss_pct", "a lot"), ("height_loss_pct", None),
    ("height_loss_pct", "25"), ("height_loss_pct", True),
    ("pain_nrs", -1), ("pain_nrs", 11), ("pain_nrs", 5.5), ("pain_nrs", "5"), ("pain_nrs", True),
    ("onset_days_before_enrollment", -1), ("onset_days_before_enrollment", 1.5),
    ("onset_days_before_enrollment", "3"),
    ("red_flags", ["smoker"]), ("red_flags", ["neuro_deficit", "neuro_deficit"]), ("red_flags", "neuro_deficit"),
])  # fmt: skip
def test_enrollment_refuses_out_of_range_and_wrong_types(field, value):
    errors = errors_of(parse_enrollment, {**PATIENT, field: value})
    assert all(f.split(".")[0] == field for f in fields_of(errors)), errors


@pytest.mark.parametrize("field", ["id", "fracture_level", "height_loss_pct", "pain_nrs"])
def test_enrollment_required_fields(field):
    errors = errors_of(parse_enrollment, {k: v for k, v in PATIENT.items() if k != field})
    assert errors == [f"{field}: Field required"]


def test_enrollment_refuses_unknown_fields():
    assert errors_of(parse_enrollment, {**PATIENT, "name": "Jane Doe"}) == ["name: unknown field"]


@pytest.mark.parametrize("typo", ["fracture-level", "observed.at", "pain_NRS"])
def test_a_misspelt_field_is_named(typo):
    assert errors_of(parse_event, {"type": "pain", "nrs": 3, typo: 1}) == [f"{typo}: unknown field"]


def test_a_key_that_is_no_name_is_not_repeated():
    errors = errors_of(parse_event, {"type": "pain", "nrs": 3, "Jane Roe <b>": 1})
    assert errors == ["body: an unknown field"]
    errors = errors_of(parse_scenario, {"name": "s", "patient": PATIENT, "until_day": 1, "Jane Roe": 1})
    assert errors == ["scenario: an unknown field"]


def test_a_fracture_of_any_age_can_be_enrolled():
    """The contract bounds the onset below only; a century is where a date stops making sense."""
    assert parse_enrollment({**PATIENT, "onset_days_before_enrollment": 4000}).onset_days_before_enrollment == 4000
    assert errors_of(parse_enrollment, {**PATIENT, "onset_days_before_enrollment": 36_501}) == [
        "onset_days_before_enrollment: Input should be less than or equal to 36500"]


def test_enrollment_names_every_bad_field():
    errors = errors_of(parse_enrollment, {**PATIENT, "pain_nrs": 12, "fracture_level": "S1"})
    assert sorted(fields_of(errors)) == ["fracture_level", "pain_nrs"]


@pytest.mark.parametrize("patch, line", [
    ({"red_flags": ["cancer"]}, "red_flags.0: Input should be 'history_of_cancer', 'fever_or_infection', "
                                "'neuro_deficit' or 'unexplained_weight_loss'"),
    ({"fracture_level": "L"}, "fracture_level: Input should be 'T1', "),
])  # fmt: skip
def test_a_value_outside_the_vocabulary_is_answered_with_the_allowed_values(patch, line):
    """Even when the value sent is part of an allowed one (the message never quotes what was sent)."""
    (error,) = errors_of(parse_enrollment, {**PATIENT, **patch})
    assert error.startswith(line)


def test_enrollment_body_must_be_an_object():
    assert fields_of(errors_of(parse_enrollment, [PATIENT])) == ["body"]


# --- Events -------------------------------------------------------------------------------------

def test_the_vocabulary_matches_the_contract():
    assert set(EVENT_TYPES) == set(VALID_EVENTS)
    assert len(ACTION_KINDS) == 23 and len(set(ACTION_KINDS)) == 23


@pytest.mark.parametrize("event_type", list(VALID_EVENTS))
def test_every_event_type_parses(event_type):
    raw = VALID_EVENTS[event_type]
    event = parse_event({**raw, "event_id": "e-1", "observed_at": "2026-01-31T09:00:00Z"})
    assert event.type == event_type and event.event_id == "e-1"
    assert event.model_dump(exclude={"event_id", "observed_at"}, exclude_none=True) == raw


@pytest.mark.parametrize("event_type, field, value", [
    ("pain", "nrs", 0), ("pain", "nrs", 10),
    ("mri", "etiology", "malignant"), ("mri", "etiology", "infection"), ("mri", "etiology", "indeterminate"),
    ("radiograph", "height_loss_pct", 0), ("radiograph", "height_loss_pct", 100),
    ("radiograph", "kyphosis_deg", 0), ("radiograph", "kyphosis_deg", 90), ("radiograph", "new_fracture_level", "T1"),
    ("dxa", "t_score", -6), ("dxa", "t_score", 4),
    ("mobility", "bed_bound", False), ("pulmonary", "dysfunction", True), ("neuro", "deficit", False),
    ("side_effect", "effect", "x" * 500),
    ("clinician", "decision", "resume"), ("clinician", "decision", "withdraw"),
    ("clinician", "decision", "confirm_nerve_block"), ("clinician", "decision", "decline_augmentation"),
])  # fmt: skip
def test_events_accept_the_edges(event_type, field, value):
    assert getattr(parse_event({**VALID_EVENTS[event_type], field: value}), field) == value


def test_radiograph_optional_fields_may_be_left_out():
    event = parse_event({"type": "radiograph", "height_loss_pct": 30})
    assert event.kyphosis_deg is None and event.new_fracture_level is None


@pytest.mark.parametrize("event_type, field, value", [
    ("pain", "nrs", -1), ("pain", "nrs", 11), ("pain", "nrs", 7.5), ("pain", "nrs", "7"), ("pain", "nrs", None),
    ("mri", "etiology", "benign"), ("mri", "etiology", ""),
    ("radiograph", "height_loss_pct", -1), ("radiograph", "height_loss_pct", 100.5),
    ("radiograph", "height_loss_pct", "x"),
    ("radiograph", "kyphosis_deg", -0.5), ("radiograph", "kyphosis_deg", 91), ("radiograph", "kyphosis_deg", "10"),
    ("radiograph", "height_loss_pct", "30"), ("radiograph", "height_loss_pct", False),
    ("radiograph", "new_fracture_level", "L6"), ("radiograph", "new_fracture_level", "C7"),
    ("dxa", "t_score", -6.1), ("dxa", "t_score", 4.1), ("dxa", "t_score", "low"), ("dxa", "t_score", "-3"),
    ("mobility", "bed_bound", "yes"), ("mobility", "bed_bound", 1),
    ("pulmonary", "dysfunction", "true"), ("neuro", "deficit", 0),
    ("side_effect", "drug", ""), ("side_effect", "effect", "x" * 501), ("side_effect", "drug", 3),
    ("clinician", "decision", "discharge"), ("clinician", "reason", ""), ("clinician", "author", ""),
    ("clinician", "author", None),
    ("pain", "event_id", ""), ("pain", "event_id", "e" * 129),
    ("pain", "observed_at", "2026-01-31T09:00:00"), ("pain", "observed_at", "yesterday"),
    ("pain", "observed_at", "0001-01-01T00:00:00+14:00"), ("pain", "observed_at", "9999-12-31T23:59:00-00:01"),
])  # fmt: skip
def test_events_refuse_out_of_range_and_wrong_types(event_type, field, value):
    errors = errors_of(parse_event, {**VALID_EVENTS[event_type], field: value})
    assert fields_of(errors) == [field], errors


@pytest.mark.parametrize("event_type, field", [
    ("pain", "nrs"), ("mri", "etiology"), ("radiograph", "height_loss_pct"), ("dxa", "t_score"),
    ("mobility", "bed_bound"), ("pulmonary", "dysfunction"), ("neuro", "deficit"),
    ("side_effect", "drug"), ("side_effect", "effect"),
    ("clinician", "decision"), ("clinician", "reason"), ("clinician", "author"),
])  # fmt: skip
def test_events_required_fields(event_type, field):
    raw = {k: v for k, v in VALID_EVENTS[event_type].items() if k != field}
    assert errors_of(parse_event, raw) == [f"{field}: Field required"]


@pytest.mark.parametrize("event_type, field", [
    ("side_effect", "drug"), ("side_effect", "effect"), ("clinician", "reason"), ("clinician", "author"),
    ("pain", "event_id"),
])  # fmt: skip
@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f"])
def test_a_scenario_refuses_control_characters_in_text_naming_the_field(event_type, field, character):
    event = {"day": 1, **VALID_EVENTS[event_type], field: f"seen{character}today"}
    errors = errors_of(parse_scenario, scenario(events=[event], until_day=5))
    assert errors == [f"events[0].{field}: contains the control character U+{ord(character):04X}; text may hold "
                      "tab, line feed and carriage return only"]


def test_text_may_hold_tabs_and_line_breaks():
    event = {"day": 1, **VALID_EVENTS["side_effect"], "effect": "dizzy\ton standing,\r\nfell once"}
    parsed = parse_scenario(scenario(events=[event], until_day=5))
    assert parsed.events[0]["effect"] == "dizzy\ton standing,\r\nfell once"


def test_a_control_character_in_a_key_is_named_by_where_the_key_is():
    assert control_character({"note": [{"text": "ok"}, {"bad\x00key": "x"}]}) == (
        "note[1]: a key contains the control character U+0000; text may hold tab, line feed and carriage return only")
    assert control_character({"note": ["fine\n"], "n": 4, "flag": None}) is None


def test_what_a_workflow_once_accepted_still_parses():
    """The models check no control character: the workflow reads its own history and state with them."""
    assert parse_event({**VALID_EVENTS["side_effect"], "drug": "x\x00y"}).drug == "x\x00y"


def test_observed_at_needs_a_time_zone():
    (line,) = errors_of(parse_event, {"type": "pain", "nrs": 3, "observed_at": "2026-01-31T09:00:00"})
    assert line.startswith("observed_at:") and "time zone" in line


@pytest.mark.parametrize("event_type", list(VALID_EVENTS))
def test_events_refuse_unknown_fields(event_type):
    assert errors_of(parse_event, {**VALID_EVENTS[event_type], "severity": 3}) == ["severity: unknown field"]


def test_a_field_of_another_event_type_is_unknown():
    assert errors_of(parse_event, {"type": "pain", "nrs": 3, "etiology": "malignant"}) == ["etiology: unknown field"]


@pytest.mark.parametrize("value", ["blood_pressure", "Pain", ""])
def test_unknown_event_type(value):
    (line,) = errors_of(parse_event, {"type": value, "nrs": 3})
    assert line.startswith("type: unknown event type") and "pain" in line and "clinician" in line


def test_missing_event_type():
    (line,) = errors_of(parse_event, {"nrs": 3})
    assert line.startswith("type: missing")


def test_event_must_be_an_object():
    assert errors_of(parse_event, "pain")


# --- Scenarios ----------------------------------------------------------------------------------

def test_the_contract_scenario_example_parses():
    s = parse_scenario(scenario(name="persistent pain escalates",
                                events=[{"day": 3, "type": "mri", "etiology": "osteoporotic"},
                                        {"day": 30, "type": "pain", "nrs": 7}]))
    timed = s.timed_events()
    assert [(day, e.type) for day, e in timed] == [(3.0, "mri"), (30.0, "pain")]
    assert s.until_day == 120 and s.patient.id == "pt-0001"


@pytest.mark.parametrize("until_day, ok", [(0, True), (730, True), (730.5, False), (731, False), (-1, False),
                                           ("30", False), (True, False)])
def test_until_day_range(until_day, ok):
    raw = scenario(until_day=until_day)
    if ok:
        assert parse_scenario(raw).until_day == until_day
    else:
        assert fields_of(errors_of(parse_scenario, raw)) == ["until_day"]


def test_events_on_the_same_day_keep_their_order():
    s = parse_scenario(scenario(events=[{"day": 5, "type": "pain", "nrs": 3}, {"day": 5, "type": "pain", "nrs": 4},
                                        {"day": 120, "type": "pain", "nrs": 2}]))
    assert [e.nrs for _, e in s.timed_events()] == [3, 4, 2]


def test_events_out_of_day_order_are_refused():
    errors = errors_of(parse_scenario, scenario(events=[{"day": 10, "type": "pain", "nrs": 3},
                                                        {"day": 9.5, "type": "pain", "nrs": 4}]))
    assert fields_of(errors) == ["events[1].day"] and "before the previous" in errors[0]


def test_event_after_until_day_is_refused():
    errors = errors_of(parse_scenario, scenario(until_day=30, events=[{"day": 30.5, "type": "pain", "nrs": 3}]))
    assert fields_of(errors) == ["events[0].day"] and "until_day" in errors[0]


@pytest.mark.parametrize("day", [-1, "ten", None, "5", True])
def test_event_day_must_be_a_number_from_0(day):
    raw = scenario(events=[{"day": day, "type": "pain", "nrs": 3}])
    assert fields_of(errors_of(parse_scenario, raw)) == ["events[0].day"]


def test_event_without_day_is_refused():
    assert fields_of(errors_of(parse_scenario, scenario(events=[{"type": "pain", "nrs": 3}]))) == ["events[0].day"]


def test_scenario_events_carry_no_observed_at():
    errors = errors_of(parse_scenario, scenario(events=[
        {"day": 1, "type": "pain", "nrs": 3, "observed_at": "2026-01-31T09:00:00Z"}]))
    assert fields_of(errors) == ["events[0].observed_at"]


@pytest.mark.parametrize("event, field", [
    ({"day": 1, "type": "pain", "nrs": 11}, "events[0].nrs"),
    ({"day": 1, "type": "pain", "nrs": 3, "mood": "low"}, "events[0].mood"),
    ({"day": 1, "type": "ecg"}, "events[0].type"),
    ({"day": 1, "type": "clinician", "decision": "pause", "reason": "r"}, "events[0].author"),
])  # fmt: skip
def test_scenario_event_errors_name_the_event_and_field(event, field):
    assert fields_of(errors_of(parse_scenario, scenario(events=[event]))) == [field]


def test_scenario_reports_every_bad_event():
    errors = errors_of(parse_scenario, scenario(events=[
        {"day": 5, "type": "pain", "nrs": -2}, {"day": 4, "type": "dxa", "t_score": 9}]))
    assert sorted(fields_of(errors)) == ["events[0].nrs", "events[1].day", "events[1].t_score"]


def test_a_bad_patient_does_not_hide_the_events_errors():
    errors = errors_of(parse_scenario, scenario(patient={**PATIENT, "pain_nrs": 11}, until_day=10, events=[
        {"day": 5, "type": "pain", "nrs": -2}, {"day": 12, "type": "pain", "nrs": 3}]))
    assert sorted(fields_of(errors)) == ["events[0].nrs", "events[1].day", "patient.pain_nrs"]


@pytest.mark.parametrize("patch, field", [
    ({"patient": {**PATIENT, "pain_nrs": 11}}, "patient.pain_nrs"),
    ({"patient": {**PATIENT, "mrn": "12345"}}, "patient.mrn"),
    ({"name": ""}, "name"),
    ({"until_day": "soon"}, "until_day"),
    ({"events": {"day": 1}}, "events"),
    ({"speed": 2}, "speed"),
])  # fmt: skip
def test_scenario_top_level_errors_name_the_field(patch, field):
    assert fields_of(errors_of(parse_scenario, scenario(**patch))) == [field]


@pytest.mark.parametrize("field", ["name", "patient", "until_day"])
def test_scenario_required_fields(field):
    raw = {k: v for k, v in scenario().items() if k != field}
    assert errors_of(parse_scenario, raw) == [f"{field}: Field required"]


def test_scenario_events_default_to_none():
    raw = {k: v for k, v in scenario().items() if k != "events"}
    assert parse_scenario(raw).timed_events() == []


def test_thousands_of_unknown_keys_are_refused_in_a_few_lines():
    with pytest.raises(ContractError) as refused:
        parse_event({"type": "pain", "nrs": 3, **{f"k{i}": 0 for i in range(2000)}})
    assert len(refused.value.errors) == MAX_ERRORS + 1 and refused.value.errors[-1] == "body: and 1990 more errors"
