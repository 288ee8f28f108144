"""Strict input: ids a URL normaliser would change, instants that are not ISO 8601 with a zone, and
JSON read one way by the API, the command line and scenario files (a key given twice, whole numbers)."""

from __future__ import annotations

import pytest

from cli.commands import InputError, _field_values
from pathway import contract_json
from pathway.contract import ContractError, parse_enrollment, parse_event

PATIENT = {"fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 3}


@pytest.mark.parametrize("patient_id", [".", ".."])
def test_dot_ids_are_refused_naming_the_field(patient_id):
    with pytest.raises(ContractError) as refused:
        parse_enrollment({"id": patient_id, **PATIENT})
    assert refused.value.errors == ["id: expected 1-64 of A-Z a-z 0-9 . _ - (and not '.' or '..')"]


@pytest.mark.parametrize("patient_id", ["...", ".a", "..a", "a.", "a..b", "pt-0001", "PT_1"])
def test_other_ids_of_the_alphabet_are_accepted(patient_id):
    assert parse_enrollment({"id": patient_id, **PATIENT}).id == patient_id


@pytest.mark.parametrize("value", [1700000000, "1700000000", 1.5, True, "2026", "2026-01-31", "2026-01-31T09:00:00",
                                   "31/01/2026 09:00Z", "2026-01-31T09:00:00 Z"])
def test_observed_at_only_as_iso_8601_with_a_zone(value):
    with pytest.raises(ContractError) as refused:
        parse_event({"type": "pain", "nrs": 3, "observed_at": value})
    (line,) = refused.value.errors
    assert line.startswith("observed_at: ") and "time zone" in line and "Value error" not in line


@pytest.mark.parametrize("value", ["2026-01-31T09:00:00Z", "2026-01-31T09:00Z", "2026-01-31T09:00:00.5+02:00"])
def test_iso_instants_with_a_zone_are_accepted(value):
    assert parse_event({"type": "pain", "nrs": 3, "observed_at": value}).observed_at.tzinfo is not None


def test_contract_json_refuses_a_key_given_twice_at_any_depth():
    with pytest.raises(contract_json.DuplicateKey, match="nrs: a key given more than once"):
        contract_json.loads('{"events": [{"type": "pain", "nrs": 11, "nrs": 5}]}')


def test_contract_json_reads_a_whole_number_as_an_integer_and_refuses_nan():
    event = parse_event(contract_json.loads('{"type": "pain", "nrs": 6.0}'))
    assert event.nrs == 6 and isinstance(event.nrs, int)
    assert contract_json.loads('{"t_score": -2.5}') == {"t_score": -2.5}
    with pytest.raises(ValueError, match="NaN"):
        contract_json.loads('{"t_score": NaN}')


def test_command_line_fields_keep_text_as_text_and_refuse_a_name_twice():
    assert _field_values("side_effect", ["drug=123", "effect=true"]) == {"drug": "123", "effect": "true"}
    assert _field_values("clinician", ["decision=pause", "reason=2", "author=null"]) == {
        "decision": "pause", "reason": "2", "author": "null"}
    assert _field_values("pain", ["nrs=6.0"]) == {"nrs": 6}
    assert _field_values("radiograph", ["height_loss_pct=27.5", "new_fracture_level=L3"]) == {
        "height_loss_pct": 27.5, "new_fracture_level": "L3"}
    with pytest.raises(InputError) as refused:
        _field_values("pain", ["nrs=3", "nrs=4"])
    assert refused.value.lines == ["nrs: given more than once"]
