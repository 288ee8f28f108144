"""``vcf guideline show`` as its own process: the console script's exit codes and its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

VCF = Path(sys.executable).parent / "vcf"


@pytest.mark.skipif(not VCF.exists(), reason="the vcf console script is not installed")
def test_the_console_script():
    done = subprocess.run([str(VCF), "guideline", "show", "--version", "nope"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "unknown guideline version 'nope'" in done.stderr
    done = subprocess.run([str(VCF), "guideline", "show", "--fhir"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout)["resourceType"] == "PlanDefinition"
