"""``vcf simulate`` as its own process: a scenario file in, the result as JSON out; an invalid
scenario names the field and exits 2, having run nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SCENARIOS, expected_of


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


def test_vcf_simulate_refuses_a_key_given_twice_and_reads_whole_numbers_as_integers(tmp_path):
    text = (SCENARIOS / "withdrawal.json").read_text(encoding="utf-8")
    twice = tmp_path / "twice.json"
    twice.write_text(text.replace('"name":', '"name": "first", "name":', 1), encoding="utf-8")
    done = subprocess.run([vcf(), "simulate", str(twice)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert "name: a key given more than once" in done.stderr

    raw = json.loads(text)
    raw["patient"]["pain_nrs"] = 8.0  # as the API takes it: a whole number is an integer
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(raw), encoding="utf-8")
    done = subprocess.run([vcf(), "simulate", str(whole)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == expected_of(SCENARIOS / "withdrawal.json")["status"]
