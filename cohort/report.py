"""What a cohort run writes: actions, patients, weekly demand and a summary (no timings: the
same seed gives the same files, byte for byte)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from statistics import mean, median, quantiles
from typing import Any

from cohort.model import CohortModel
from cohort.run import PatientResult
from pathway.contract import ACTION_KINDS
from pathway.guideline import PathwayDefinition

# The care-team task the order book writes for a result that is overdue (a note in the pathway).
OVERDUE = "escalate_overdue_result"
KINDS: tuple[str, ...] = (*ACTION_KINDS, OVERDUE)
REFERRALS = {
    "physical_therapy": "refer_physical_therapy",
    "vertebral_augmentation": "refer_vertebral_augmentation",
    "urgent_spine_surgery": "refer_urgent_spine_surgery",
    "pathologic_fracture_workup": "refer_pathologic_fracture_workup",
}
STATUSES = ("completed", "exited", "withdrawn", "running")
# Short names of the kinds that the plots and the console show.
LABELS = {
    "order_mri": "MRI",
    "order_radiograph": "follow-up radiograph",
    "order_adjacent_fracture_screening": "adjacent-fracture screening",
    "order_dxa": "DXA",
    "refer_physical_therapy": "physical therapy",
    "refer_vertebral_augmentation": "augmentation (evaluation)",
    "refer_urgent_spine_surgery": "urgent spine surgery",
    "refer_pathologic_fracture_workup": "pathologic work-up",
    "offer_nerve_block": "nerve-block offer",
    "request_clinician_review": "clinician review request",
    OVERDUE: "overdue result escalation",
    "escalate_lost_to_follow_up": "lost to follow-up escalation",
    "flag_progressive_deformity": "progressive deformity",
    "flag_new_vertebral_fracture": "new vertebral fracture",
    "alert_prolonged_immobilization": "prolonged immobilization",
    "outreach_missed_follow_up": "outreach (missed report)",
}


def rows(result: PatientResult) -> list[tuple[float, str, str, str]]:
    """A patient's actions and overdue-result escalations as (day, kind, id, details), by day."""
    run = result.run
    found = [(day, kind, action_id, details) for day, kind, action_id, details in run.actions]
    found += [(day, OVERDUE, f"overdue:{order}", f"order={order}") for day, order in run.escalations]
    return sorted(found, key=lambda row: row[0])


def _r(value: float, digits: int = 4) -> float:
    return round(value, digits)


def _spread(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"patients": 0, "median": None, "p25": None, "p75": None, "mean": None}
    q = quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return {"patients": len(values), "median": _r(median(values), 2), "p25": _r(q[0], 2), "p75": _r(q[2], 2),
            "mean": _r(mean(values), 2)}


def weekly_demand(results: list[PatientResult]) -> tuple[list[int], dict[str, list[int]]]:
    """Actions per calendar week (enrollment day + pathway day), per kind."""
    counts: Counter[tuple[int, str]] = Counter()
    last = 0
    for result in results:
        for day, kind, _, _ in rows(result):
            week = int((result.enrolled_on + day) // 7)
            counts[(week, kind)] += 1
            last = max(last, week)
    weeks = list(range(last + 1))
    return weeks, {kind: [counts[(w, kind)] for w in weeks] for kind in KINDS}


def summary(results: list[PatientResult], model: CohortModel, defn: PathwayDefinition, seed: int,
            what_if: dict[str, Any]) -> dict[str, Any]:
    """The figures of a run (see the README's "Before go-live")."""
    n = len(results)
    per_kind: Counter[str] = Counter()
    patients_with: Counter[str] = Counter()
    first_day: dict[str, list[float]] = {kind: [] for kind in REFERRALS.values()}
    reasons: Counter[str] = Counter()
    procedures: Counter[str] = Counter()
    criteria: Counter[str] = Counter()
    overdue_by_kind: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    decides = rejected = 0
    for result in results:
        run = result.run
        statuses[run.status] += 1
        decides += run.decides
        rejected += run.rejected
        seen: set[str] = set()
        for day, kind, _action_id, details in rows(result):
            per_kind[kind] += 1
            if kind in first_day and kind not in seen:
                first_day[kind].append(day)
            seen.add(kind)
            fields = dict(part.split("=", 1) for part in details.split(";") if part)
            if kind == "request_clinician_review":
                reasons[fields.get("reason", "?")] += 1
            elif kind == "refer_vertebral_augmentation":
                procedures[fields.get("suggested_procedure", "?")] += 1
                criteria.update(fields.get("criteria", "").split("+"))
            elif kind == OVERDUE:
                overdue_by_kind[fields["order"].split(":")[0]] += 1
        patients_with.update(seen)

    def share(count: int) -> float:
        return _r(count / n) if n else 0.0

    return {
        "patients": n,
        "seed": seed,
        "model": model.name,
        "horizon_days": model.horizon_days,
        "guideline_version": defn.version,
        "what_if": what_if,
        "actions": {kind: {"count": per_kind[kind], "patients": patients_with[kind],
                           "share_of_patients": share(patients_with[kind]),
                           "per_100_patients": _r(100 * per_kind[kind] / n, 2) if n else 0.0} for kind in KINDS},
        "referrals": {name: {"patients": patients_with[kind], "share_of_patients": share(patients_with[kind])}
                      for name, kind in REFERRALS.items()},
        "time_to_physical_therapy_days": _spread(first_day["refer_physical_therapy"]),
        "time_to_augmentation_referral_days": _spread(first_day["refer_vertebral_augmentation"]),
        "augmentation": {"suggested_procedure": dict(sorted(procedures.items())),
                         "criteria": dict(sorted((k, v) for k, v in criteria.items() if k))},
        "exits": {status: {"patients": statuses[status], "share_of_patients": share(statuses[status])}
                  for status in STATUSES},
        "lost_to_follow_up": {
            "patients": patients_with["escalate_lost_to_follow_up"],
            "share_of_patients": share(patients_with["escalate_lost_to_follow_up"]),
            "outreach_patients": patients_with["outreach_missed_follow_up"],
            "outreach_share_of_patients": share(patients_with["outreach_missed_follow_up"]),
            "dropped_out_in_model": sum(r.dropped_out for r in results),
        },
        "clinician_review_reasons": dict(sorted(reasons.items())),
        "overdue_results": {"escalations": per_kind[OVERDUE], "patients": patients_with[OVERDUE],
                            "by_order_kind": dict(sorted(overdue_by_kind.items()))},
        "rejected_events": rejected,
        "decides_per_patient": _r(decides / n, 2) if n else 0.0,
    }


def write_files(out: Path, results: list[PatientResult], model: CohortModel, defn: PathwayDefinition, seed: int,
                what_if: dict[str, Any]) -> dict[str, Any]:
    """Write actions.csv, patients.csv, weekly_demand.csv and summary.json; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "actions.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["patient", "day", "calendar_day", "kind", "id", "details"])
        for result in results:
            for day, kind, action_id, details in rows(result):
                w.writerow([result.id, f"{day:.3f}", f"{result.enrolled_on + day:.3f}", kind, action_id, details])
    with (out / "patients.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["patient", "enrolled_on", "fracture_level", "height_loss_pct", "pain_nrs", "onset_days",
                    "red_flags", "pain_course", "first_mri", "dropped_out", "new_fracture", "status", "end_day",
                    "actions", "rejected_events"])
        for r in results:
            w.writerow([r.id, r.enrolled_on, r.fracture_level, f"{r.height_loss_pct:g}", r.pain_nrs, r.onset_days,
                        "+".join(r.red_flags), "non_responder" if r.non_responder else "responder", r.first_mri,
                        int(r.dropped_out), int(r.new_fracture), r.run.status, f"{r.run.end_day:.3f}",
                        len(r.run.actions), r.run.rejected])
    weeks, demand = weekly_demand(results)
    with (out / "weekly_demand.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["week", "from_day", *KINDS, "total"])
        for i, week in enumerate(weeks):
            counts = [demand[kind][i] for kind in KINDS]
            w.writerow([week, week * 7, *counts, sum(counts)])
    figures = summary(results, model, defn, seed, what_if)
    (out / "summary.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def compare_rows(base: dict[str, Any], variant: dict[str, Any]) -> list[dict[str, Any]]:
    """Per action kind: patients and actions under the current and the changed definition."""
    found = []
    for kind in KINDS:
        a, b = base["actions"][kind], variant["actions"][kind]
        found.append({"kind": kind, "current_patients": a["patients"], "changed_patients": b["patients"],
                      "patients_difference": b["patients"] - a["patients"],
                      "share_difference_points": _r(100 * (b["share_of_patients"] - a["share_of_patients"]), 2),
                      "current_actions": a["count"], "changed_actions": b["count"],
                      "actions_difference": b["count"] - a["count"]})
    return found


def write_compare(out: Path, table: list[dict[str, Any]]) -> None:
    """compare.csv: the difference per action kind."""
    with (out / "compare.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(table)
