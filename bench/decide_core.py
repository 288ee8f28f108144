"""Benchmark: the pure decision core over one patient-year, as the workflow drives it.

One patient (enrollment, 52 weekly pain reports, 6 results) is decided at every event and every
due instant, exactly as the workflow's loop does (decide, then the next due instants and the
overdue checks). Prints decide calls per patient-year, microseconds per decide and per round,
and patient-years per second on one core.

    .venv/bin/python bench/decide_core.py [--seconds S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pathway.contract import Enrollment, parse_event
from pathway.decisions import decide, next_due
from pathway.facts import SETTLE, PatientFacts
from pathway.guideline import PathwayDefinition, load_definition
from pathway.results import observe, overdue_checks, overdue_orders, take

RESULTS = {3: {"type": "mri", "etiology": "osteoporotic"}, 10: {"type": "dxa", "t_score": -2.7},
           15: {"type": "radiograph", "height_loss_pct": 26}, 43: {"type": "radiograph", "height_loss_pct": 27},
           85: {"type": "radiograph", "height_loss_pct": 27}, 183: {"type": "radiograph", "height_loss_pct": 27}}
EVENTS = sorted({**{d: {"type": "pain", "nrs": max(1, 8 - d // 20)} for d in range(7, 365, 7)}, **RESULTS}.items())


def patient_year(defn: PathwayDefinition, clock: list[float]) -> int:
    """Drive one patient-year; add the time spent in ``decide`` to ``clock[0]``; return the rounds."""
    facts = PatientFacts(enrollment=Enrollment(id="pt-bench", fracture_level="L2", height_loss_pct=25, pain_nrs=8))
    rounds, now = 0, 0.0

    def round_at(t: float) -> str:
        nonlocal rounds
        began = time.perf_counter()
        decision = decide(defn, facts, t)
        clock[0] += time.perf_counter() - began
        rounds += 1
        take(facts, decision.actions, t)
        facts.noted.extend(note.id for note in decision.notes)
        overdue_orders(defn, facts, t)
        overdue_checks(defn, facts, t)
        return decision.status

    def until(day: float) -> str:
        nonlocal now
        status = "running"
        while status == "running":
            dues = [d.day + SETTLE for d in next_due(defn, facts, now) if d.day + SETTLE <= day]
            if not dues:
                break
            now = min(dues)
            status = round_at(now)
        return status

    round_at(0)
    for day, raw in EVENTS:
        until(day)
        observe(facts, day, parse_event(raw), defn=defn)
        now = day
        round_at(day)
    until(365.01)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    defn = load_definition()
    clock, years, rounds = [0.0], 0, 0
    began = time.perf_counter()
    while time.perf_counter() - began < args.seconds:
        rounds += patient_year(defn, clock)
        years += 1
    elapsed = time.perf_counter() - began
    print(f"guideline {defn.version}: {years} patient-years in {elapsed:.2f} s, {rounds / years:.0f} rounds each")
    print(f"decide: {clock[0] / rounds * 1e6:.1f} µs per call; whole round (decide, timers, overdue): "
          f"{elapsed / rounds * 1e6:.1f} µs; {years / elapsed:.0f} patient-years per second on one core")


if __name__ == "__main__":
    main()
