"""The short reliability drill (``vcf-drill --short``) as CI runs it: the whole system as its own
processes on loopback — dev server, two workers, the API — 20 patients streamed through the API
while a worker is SIGKILLed 3 times, the dev server restarts once and the order book is locked
for a while; then nothing acknowledged is lost, no order is doubled or missing, no pathway is
stuck, no 5xx, and a small flood from the OpenAPI description leaves no pathway blocked."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT


def test_the_short_drill_loses_nothing_doubles_nothing_and_leaves_nothing_stuck(tmp_path):
    out = tmp_path / "drill"
    run = subprocess.run([sys.executable, "-m", "drill", "--short", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    print(run.stdout)
    assert (out / "result.json").exists(), ("the drill wrote no result", run.returncode, run.stderr[-5000:])
    result = json.loads((out / "result.json").read_text())
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert result["passed"] is True
    # It did break things: the mishaps it was asked for all happened.
    assert result["worker_kills"] == 3
    assert result["server_restarts"] == 1
    assert result["outage_s"] >= 10
    assert result["outage_failures_logged"] > 0  # order writes due while the book was away failed, logged, retried
    assert result["continued_as_new"] > 0
    # ... and everything it was told came through.
    assert result["patients"] == 20
    # 6 events each through the API, and a few straight to the workflow service during the outage
    assert 20 * 6 < result["events_acknowledged"] == result["events_applied"] <= 20 * 6 + 5
    assert result["lost"] == result["duplicated_orders"] == result["missing_orders"] == result["stuck"] == 0
    assert result["server_errors"] == result["flood_server_errors"] == 0
    assert result["flood_requests"] > 0 and result["flood_blocked_pathways"] == 0
    journal = (out / "requests.jsonl").read_text().splitlines()
    assert len(journal) >= 20 * 7  # every request and its answer, retries included
