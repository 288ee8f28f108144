"""The scenario files (``tests/scenarios/``): each is a valid scenario with an expectation beside
it, and together they fire every action kind. They run in ``workflow/test_scenarios.py``."""

from __future__ import annotations

import json

from pathway.contract import ACTION_KINDS, parse_scenario
from tests.helpers import expected_of, scenario_files

FILES = scenario_files()
EXPECTED_KEYS = {"status", "phase", "kinds", "absent", "rejected"}
OPTIONAL_KEYS = {"details", "reviews", "notes", "guideline_version"}


def test_every_scenario_is_valid_and_has_an_expectation():
    assert len(FILES) >= 15
    ids = set()
    for path in FILES:
        scenario = parse_scenario(json.loads(path.read_text(encoding="utf-8")))
        expected = expected_of(path)
        assert EXPECTED_KEYS <= set(expected) <= EXPECTED_KEYS | OPTIONAL_KEYS, path.name
        assert set(expected["kinds"]) | set(expected["absent"]) <= set(ACTION_KINDS), path.name
        assert not set(expected["kinds"]) & set(expected["absent"]), path.name
        ids.add(scenario.patient.id)
    assert len(ids) == len(FILES)


def test_the_scenarios_fire_every_action_kind():
    fired = set().union(*(expected_of(path)["kinds"] for path in FILES))
    assert fired == set(ACTION_KINDS), sorted(set(ACTION_KINDS) - fired)
