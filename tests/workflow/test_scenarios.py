"""Scenario files run through the real workflow on the time-skipping server.

Each ``tests/scenarios/<name>.json`` has ``<name>.expected.json`` beside it, derived by hand from
docs/clinical-decisions.md: status, phase, action kinds in order, kinds that must not fire, the
number of rejected events, and optionally ``details`` ({kind: {key: value}}) that the first action
of that kind must carry, ``reviews`` (the reasons of the ``request_clinician_review`` actions, in
order), ``notes`` (the ids of the decision notes, in order) and ``guideline_version`` (run under
that released version instead of the current one). The files themselves are checked in
``unit/test_scenario_files.py``, and ``vcf simulate`` as a process in ``integration/test_vcf_simulate.py``.
"""

from __future__ import annotations

import json

import pytest

from cli.simulate import simulate
from pathway.contract import parse_scenario
from pathway.guideline import released_definitions
from tests.helpers import expected_of, scenario_files

FILES = scenario_files()
AT_ENROLLMENT = {
    "prescribe_first_line_analgesia", "prescribe_opioid_short_course", "start_calcitonin", "advise_early_mobilization",
    "offer_brace", "prescribe_calcium_vitamin_d", "prescribe_bisphosphonate", "order_dxa",
}  # fmt: skip


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_scenario(ts_env, path):
    scenario = parse_scenario(json.loads(path.read_text(encoding="utf-8")))
    expected = expected_of(path)
    version = expected.get("guideline_version")
    result = await simulate(scenario, env=ts_env, definition=released_definitions()[version] if version else None)
    kinds = [a["kind"] for a in result["actions"]]
    assert result["name"] == scenario.name
    assert (result["status"], result["phase"]) == (expected["status"], expected["phase"])
    assert kinds == expected["kinds"]
    assert not set(kinds) & set(expected["absent"])
    assert len(result["rejected"]) == expected["rejected"], result["rejected"]
    assert all(r["reason"] for r in result["rejected"])
    if "reviews" in expected:
        assert [a["details"]["reason"] for a in result["actions"] if a["kind"] == "request_clinician_review"] \
            == expected["reviews"]
    if "notes" in expected:
        assert [n["id"] for n in result["notes"]] == expected["notes"]
        assert all(n["text"] and n["citation"] and n["day"] <= scenario.until_day + 0.001 for n in result["notes"]), \
            [n["id"] for n in result["notes"] if not n["citation"]]
    for kind, details in expected.get("details", {}).items():
        first = next(a for a in result["actions"] if a["kind"] == kind)
        assert {k: first["details"].get(k) for k in details} == details, kind
    days = [a["day"] for a in result["actions"]]
    assert days == sorted(days) and 0 <= days[0] and days[-1] <= scenario.until_day + 0.001
    assert all(a["day"] == 0 for a in result["actions"] if a["kind"] in AT_ENROLLMENT)
    for action in result["actions"]:
        assert action["rationale"] and action["citation"].startswith("Guideline: ")
