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


def test_the_files_do_not_depend_on_the_number_of_workers(tmp_path):
    for workers in ("1", "2"):
        done = vcf("--patients", "40", "--seed", "11", "--workers", workers, "--out", str(tmp_path / workers))
        assert done.returncode == 0, done.stderr
        assert f"on {workers} worker(s)" in done.stderr and "patient-years per second" in done.stderr
    files = sorted(p.name for p in (tmp_path / "1").iterdir())
    assert len(files) == 7
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


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
