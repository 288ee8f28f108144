"""``vcf cohort`` as its own process: worker processes change nothing in the files, and
--check-temporal runs patients through the real workflow and says whether both engines agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

MODEL = str(ROOT / "seeds" / "cohorts" / "default.json")


def vcf(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "vcf"), "cohort", MODEL, *args],
                          capture_output=True, text=True, timeout=timeout)


def test_the_same_seed_gives_the_same_files_whatever_the_number_of_workers(tmp_path):
    for run, workers, seed in (("a", "1", "11"), ("b", "2", "11"), ("c", "2", "12")):
        done = vcf("--patients", "40", "--seed", seed, "--workers", workers, "--out", str(tmp_path / run))
        assert done.returncode == 0, done.stderr
        assert f"on {workers} worker(s)" in done.stderr and "patient-years per second" in done.stderr
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["actions.csv", "cumulative_referrals.png", "pain_trajectories.png", "patients.csv",
                     "summary.json", "weekly_demand.csv", "weekly_demand.png"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    png = (tmp_path / "a" / "weekly_demand.png").read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png


def test_compare_reports_the_difference_per_action_kind(tmp_path):
    done = vcf("--patients", "30", "--seed", "2", "--compare", "persistent_pain_nrs=7", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "What if persistent_pain_nrs=7? Difference per action kind (30 patients)" in done.stdout
    assert (tmp_path / "compare.png").read_bytes().startswith(b"\x89PNG")
    header = (tmp_path / "compare.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("kind,current_patients,changed_patients,patients_difference")
    assert '"guideline_version": "vcf-1.2+persistent_pain_nrs=7"' in (tmp_path / "variant" / "summary.json").read_text()
    # A plain run into the same folder leaves none of the what-if's files to be read as its own.
    again = vcf("--patients", "30", "--seed", "2", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert not {"compare.csv", "compare.png", "variant"} & {p.name for p in tmp_path.iterdir()}


def test_check_temporal_compares_with_the_workflow(tmp_path):
    done = vcf("--patients", "12", "--seed", "2", "--workers", "2", "--check-temporal", "3", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agreement with the workflow: 3 of 3 patients, action for action" in done.stdout


def test_an_invalid_request_exits_2_before_anything_runs(tmp_path):
    done = vcf("--patients", "0", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "--patients: 0 must be at least 1" in done.stderr
    done = vcf("--patients", "5", "--set", "persistent_pain_nrs=abc", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "persistent_pain_nrs: 'abc' is not a number" in done.stderr
    assert not (tmp_path / "out").exists()
