"""Scenario files run through the real workflow on the time-skipping server, and ``vcf simulate``.

Each ``tests/scenarios/<name>.json`` has ``<name>.expected.json`` beside it, derived by hand from
docs/clinical-decisions.md: status, phase, action kinds in order, kinds that must not fire, the
number of rejected events, and optionally ``details`` ({kind: {key: value}}) that the first action
of that kind must carry, ``reviews`` (the reasons of the ``request_clinician_review`` actions, in
order), ``notes`` (the ids of the decision notes, in order) and ``guideline_version`` (run under
that released version instead of the current one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.simulate import simulate
from pathway.contract import ACTION_KINDS, parse_scenario
from pathway.guideline import released_definitions

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = sorted(p for p in SCENARIOS.glob("*.json") if not p.name.endswith(".expected.json"))
EXPECTED_KEYS = {"status", "phase", "kinds", "absent", "rejected"}
OPTIONAL_KEYS = {"details", "reviews", "notes", "guideline_version"}
AT_ENROLLMENT = {
    "prescribe_first_line_analgesia", "prescribe_opioid_short_course", "start_calcitonin", "advise_early_mobilization",
    "offer_brace", "prescribe_calcium_vitamin_d", "prescribe_bisphosphonate", "order_dxa",
}  # fmt: skip


def expected_of(path: Path) -> dict:
    return json.loads(path.with_name(path.stem + ".expected.json").read_text(encoding="utf-8"))


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
        assert all(n["text"] and n["day"] <= scenario.until_day + 0.001 for n in result["notes"])
    for kind, details in expected.get("details", {}).items():
        first = next(a for a in result["actions"] if a["kind"] == kind)
        assert {k: first["details"].get(k) for k in details} == details, kind
    days = [a["day"] for a in result["actions"]]
    assert days == sorted(days) and 0 <= days[0] and days[-1] <= scenario.until_day + 0.001
    assert all(a["day"] == 0 for a in result["actions"] if a["kind"] in AT_ENROLLMENT)
    for action in result["actions"]:
        assert action["rationale"] and action["citation"].startswith("Guideline: ")


def vcf() -> str:
    return str(Path(sys.executable).parent / "vcf")


def test_vcf_simulate_prints_the_result_as_json():
    done = subprocess.run([vcf(), "simulate", str(SCENARIOS / "withdrawal.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = expected_of(SCENARIOS / "withdrawal.json")
    assert {"name", "status", "phase", "actions", "rejected"} <= set(result)
    assert result["status"] == expected["status"]
    assert [a["kind"] for a in result["actions"]] == expected["kinds"]
    assert len(result["rejected"]) == expected["rejected"]


@pytest.mark.parametrize("change, field", [
    (lambda s: s["events"].__setitem__(0, {"day": 9, "type": "pain", "nrs": 11}), "events[0].nrs"),
    (lambda s: s.__setitem__("until_day", 800), "until_day"),
    (lambda s: s["events"][1].__setitem__("day", 2), "events[1].day"),
    (lambda s: s["patient"].__setitem__("fracture_level", "C2"), "patient.fracture_level"),
])  # fmt: skip
def test_vcf_simulate_refuses_an_invalid_scenario(tmp_path, change, field):
    raw = json.loads((SCENARIOS / "withdrawal.json").read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    done = subprocess.run([vcf(), "simulate", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{field}:" in done.stderr
