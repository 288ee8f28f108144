"""What ``vcf cohort`` does (see :mod:`cohort.cli` for its arguments): run the cohort, write the files and
plots, compare a variant, check against the workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cohort import report
from cohort.agreement import check_temporal, choose
from cohort.model import CohortModel, CohortModelError, load_model
from cohort.run import PatientResult, cpu_seconds, default_workers, simulate_cohort
from cohort.whatif import WhatIfError, apply, label
from pathway.guideline import PathwayDefinition, load_definition

EXIT_OK, EXIT_DISAGREE, EXIT_INVALID = 0, 1, 2


def main(args: argparse.Namespace) -> int:
    """Run the command; return its exit code."""
    err = Console(stderr=True)
    problems = [text for ok, text in (
        (args.patients >= 1, f"--patients: {args.patients} must be at least 1"),
        (args.workers is None or args.workers >= 1, f"--workers: {args.workers} must be at least 1"),
        (0 <= args.check_temporal <= args.patients,
         f"--check-temporal: {args.check_temporal} must be between 0 and --patients ({args.patients})"),
    ) if not ok]
    if problems:
        for text in problems:
            err.print(f"error: {text}", markup=False, highlight=False)
        return EXIT_INVALID
    try:
        model = load_model(args.model)
    except CohortModelError as exc:
        err.print(f"error: invalid cohort model {args.model}:", markup=False, highlight=False)
        for line in exc.errors:
            err.print(f"  {line}", markup=False, highlight=False)
        return EXIT_INVALID
    try:
        base, sets = apply(load_definition(), args.changes)
        variant, compares = apply(base, args.compare)
    except WhatIfError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return EXIT_INVALID
    workers = args.workers or default_workers()
    out = Path(args.out)
    out_console = Console()
    out_console.width = max(out_console.width, 110)  # tables stay whole when the output is a file

    results = _run(err, model, base, args.seed, args.patients, workers, "current" if compares else "patients")
    what_if = {"set": label(sets)} if sets else {}
    if not compares:  # a what-if run into this folder before would otherwise read as this run's
        _remove_compare_files(out)
    figures = _write(out, results, model, base, args.seed, what_if)
    _print_summary(out_console, figures)
    if compares:
        changed = _run(err, model, variant, args.seed, args.patients, workers, "changed")
        variant_figures = _write(out / "variant", changed, model, variant, args.seed,
                                 {**what_if, "compare": label(compares)})
        table = report.compare_rows(figures, variant_figures)
        report.write_compare(out, table)
        title = f"What if {label(compares)}? {args.patients:,} patients, seed {args.seed}, guideline {base.version}"
        from cohort.plots import compare_plot  # matplotlib loads only when something is plotted

        compare_plot(table, args.patients, out / "compare.png", title)
        _print_compare(out_console, table, label(compares), args.patients)
    out_console.print(f"files in {out}/", highlight=False)
    if args.check_temporal:
        return _check(err, out_console, model, base, args.seed, results, args.check_temporal)
    return EXIT_OK


def _remove_compare_files(out: Path) -> None:
    """The files only a --compare run writes (compare.csv, compare.png, variant/), left by an earlier run."""
    for name in ("compare.csv", "compare.png"):
        (out / name).unlink(missing_ok=True)
    variant = out / "variant"
    if variant.is_dir():
        for child in variant.iterdir():
            if child.is_file():
                child.unlink()
        with contextlib.suppress(OSError):  # not empty: something of someone else's is in it
            variant.rmdir()


def _run(err: Console, model: CohortModel, defn: PathwayDefinition, seed: int, patients: int, workers: int,
         what: str) -> list[PatientResult]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    began, cpu = time.perf_counter(), cpu_seconds()
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(f"{what} ({defn.version})", total=patients)
        results = simulate_cohort(model, defn, seed, patients, workers, lambda n: bar.advance(task, n))
    elapsed, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    years = patients * model.horizon_days / 365
    decides = sum(r.run.decides for r in results)
    err.print(f"{patients:,} patients ({years:,.0f} patient-years) in {elapsed:.2f} s on {workers} worker(s): "
              f"[bold]{years / elapsed:,.0f} patient-years per second[/bold] "
              f"({years / cpu:,.0f} per CPU-second; {cpu:.1f} CPU-s in all); {decides / patients:.0f} decides per "
              f"patient, {cpu / decides * 1e6:.0f} µs of CPU per decide round", highlight=False, soft_wrap=True)
    return results


def _write(out: Path, results: list[PatientResult], model: CohortModel, defn: PathwayDefinition, seed: int,
           what_if: dict[str, Any]) -> dict[str, Any]:
    figures = report.write_files(out, results, model, defn, seed, what_if)
    from cohort.plots import all_plots  # matplotlib loads only when something is plotted

    title = f"{len(results):,} patients, seed {seed}, guideline {defn.version}"
    all_plots(results, out, title, defn.rules.persistent_pain_nrs.value, defn.rules.review_day.value)
    return figures


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _print_summary(console: Console, f: dict[str, Any]) -> None:
    table = Table(title=f"{f['patients']:,} patients, seed {f['seed']}, guideline {f['guideline_version']}",
                  title_justify="left")
    table.add_column("figure")
    table.add_column("patients", justify="right")
    table.add_column("share", justify="right")
    for name, row in f["referrals"].items():
        table.add_row(f"referred: {name.replace('_', ' ')}", f"{row['patients']:,}", _pct(row["share_of_patients"]))
    for name, row in f["exits"].items():
        table.add_row(f"pathway {name}", f"{row['patients']:,}", _pct(row["share_of_patients"]))
    lost = f["lost_to_follow_up"]
    table.add_row("escalated as lost to follow-up", f"{lost['patients']:,}", _pct(lost["share_of_patients"]))
    table.add_row("outreach for a missed report", f"{lost['outreach_patients']:,}",
                  _pct(lost["outreach_share_of_patients"]))
    overdue = f["overdue_results"]
    table.add_row("overdue result escalated", f"{overdue['patients']:,}", _pct(overdue["patients"] / f["patients"]))
    pt = f["time_to_physical_therapy_days"]
    if pt["patients"]:
        table.add_row("days to physical therapy (median, IQR)", f"{pt['median']:g}", f"{pt['p25']:g}–{pt['p75']:g}")
    console.print(table)


def _print_compare(console: Console, table_rows: list[dict[str, Any]], what: str, patients: int) -> None:
    table = Table(title=f"What if {what}? Difference per action kind ({patients:,} patients)", title_justify="left")
    for name in ("action kind", "patients now", "patients changed", "difference", "points", "actions now",
                 "actions changed"):
        table.add_column(name, justify="left" if name == "action kind" else "right")
    shown = [row for row in table_rows if row["patients_difference"] or row["actions_difference"]]
    for row in shown:
        table.add_row(report.LABELS.get(row["kind"], row["kind"]), f"{row['current_patients']:,}",
                      f"{row['changed_patients']:,}", f"{row['patients_difference']:+,}",
                      f"{row['share_difference_points']:+.2f}", f"{row['current_actions']:,}",
                      f"{row['changed_actions']:,}")
    if not shown:
        table.add_row("(no action kind changed)", "", "", "", "", "", "")
    console.print(table)


def _check(err: Console, console: Console, model: CohortModel, defn: PathwayDefinition, seed: int,
           results: list[PatientResult], k: int) -> int:
    indexes = choose((r.run for r in results), k)
    began = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task("the workflow (time-skipping server)", total=len(indexes))
        agreement = asyncio.run(check_temporal(model, defn, seed, indexes, lambda n: bar.update(task, completed=n)))
    err.print(f"{len(indexes)} patients through the workflow in {time.perf_counter() - began:.1f} s", highlight=False,
              soft_wrap=True)
    for patient, lines in agreement.disagreements.items():
        console.print(f"{patient}: the workflow and the cohort driver disagree", highlight=False)
        for line in lines:
            console.print(line, markup=False, highlight=False)
    agreed = agreement.checked - len(agreement.disagreements)
    console.print(f"agreement with the workflow: {agreed} of {agreement.checked} patients, action for action",
                  highlight=False)
    return EXIT_OK if agreement.ok else EXIT_DISAGREE
