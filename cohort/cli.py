"""``vcf cohort MODEL``: a synthetic cohort through the pathway's pure core, before go-live.

    vcf cohort seeds/cohorts/default.json --patients 10000 --seed 1 --out out/
    vcf cohort seeds/cohorts/default.json --compare persistent_pain_nrs=6
    vcf cohort seeds/cohorts/default.json --patients 200 --check-temporal 20

Writes actions.csv, patients.csv, weekly_demand.csv, summary.json and three PNG plots to --out
(the same seed gives the same files); with --compare also variant/ (the changed guideline's files),
compare.csv and compare.png. Timings go to the console only. Exit codes: 0 ok, 1 the workflow
disagreed with the cohort driver (--check-temporal), 2 invalid input (the message names it).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add ``vcf cohort`` to the ``vcf`` command's subparsers."""
    p = sub.add_parser("cohort", help="simulate a synthetic cohort through the pathway: demand, referrals, what-if",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="cohort model JSON (e.g. seeds/cohorts/default.json)")
    p.add_argument("--patients", type=int, default=1000, help="number of synthetic patients (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same files (default 1)")
    p.add_argument("--out", default="out/cohort", help="output folder (default out/cohort)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="RULE=VALUE",
                   help="run under the guideline with this rule changed (rules, safety rules, schedules; repeatable)")
    p.add_argument("--compare", action="append", default=[], metavar="RULE=VALUE",
                   help="also run the same patients with this rule changed and report the difference (repeatable)")
    p.add_argument("--check-temporal", type=int, default=0, metavar="K",
                   help="run K of the patients through the real workflow (time-skipping server) and compare")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the command; return its exit code (matplotlib and the rest load only when it runs)."""
    from cohort.command import main as run

    return run(args)
