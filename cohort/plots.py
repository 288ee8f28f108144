"""The plots of a cohort run (matplotlib, Agg): weekly demand by order kind, cumulative referrals,
pain trajectories by outcome, and the what-if comparison. PNGs carry no software name or date, so
the same run gives the same bytes."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean, quantiles
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from cohort.report import LABELS, OVERDUE, weekly_demand
from cohort.run import PatientResult

MEDICATION = ("prescribe_first_line_analgesia", "prescribe_opioid_short_course", "start_calcitonin",
              "stop_calcitonin", "prescribe_calcium_vitamin_d", "prescribe_bisphosphonate")
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Imaging and DXA orders", ("order_radiograph", "order_mri", "order_adjacent_fracture_screening", "order_dxa")),
    ("Referrals and offers", ("refer_physical_therapy", "refer_vertebral_augmentation", "offer_nerve_block",
                              "refer_urgent_spine_surgery", "refer_pathologic_fracture_workup")),
    ("Care-team tasks", ("request_clinician_review", OVERDUE, "escalate_lost_to_follow_up",
                         "flag_progressive_deformity", "flag_new_vertebral_fracture",
                         "alert_prolonged_immobilization")),
    ("Patient contact and medication", ("outreach_missed_follow_up", "medication")),
)
REFERRALS = ("refer_physical_therapy", "refer_vertebral_augmentation", "offer_nerve_block",
             "refer_urgent_spine_surgery", "refer_pathologic_fracture_workup")
MIN_REPORTS = 20  # a week's band is drawn from at least this many reports
SAVE: dict[str, Any] = {"dpi": 110, "metadata": {"Software": None}}


def _style() -> None:
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.grid": True, "grid.alpha": 0.3,
                         "legend.fontsize": 8, "svg.hashsalt": "vcf-cohort", "axes.spines.top": False,
                         "axes.spines.right": False})


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, **SAVE)
    plt.close(fig)


def demand_plot(results: list[PatientResult], path: Path, title: str) -> None:
    """Orders per calendar week, one panel per group of order kinds."""
    _style()
    weeks, demand = weekly_demand(results)
    enrolling_weeks = (max((r.enrolled_on for r in results), default=0) + 1) / 7
    demand["medication"] = [sum(demand[k][i] for k in MEDICATION) for i in range(len(weeks))]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    for ax, (name, kinds) in zip(axes.flat, PANELS, strict=True):
        ax.axvspan(0, enrolling_weeks, color="grey", alpha=0.07, linewidth=0, label="weeks with enrollments")
        peak = 1
        for kind in kinds:
            series = demand[kind]
            if any(series):
                peak = max(peak, *series)
                ax.plot(weeks, series, linewidth=1.2,
                        label=f"{LABELS.get(kind, 'medication orders, all kinds')} ({sum(series):,})")
        ax.set_title(name)
        ax.set_ylabel("orders per week")
        ax.set_xlim(0, max(weeks[-1], 1))
        ax.set_ylim(0, peak * 1.6)
        ax.legend(loc="upper left", frameon=False, ncol=2, fontsize=7.5, title="order kind (orders in all)",
                  title_fontsize=7.5, alignment="left")
    for ax in axes[1]:
        ax.set_xlabel("calendar week (from the first enrollment)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def referral_plot(results: list[PatientResult], path: Path, title: str, review_day: float) -> None:
    """Cumulative share of patients referred, by day since enrollment."""
    _style()
    n = max(1, len(results))
    firsts: dict[str, list[float]] = {kind: [] for kind in REFERRALS}
    for result in results:
        seen = set()
        for day, kind, _, _ in result.run.actions:
            if kind in firsts and kind not in seen:
                firsts[kind].append(day)
                seen.add(kind)
    horizon = max((r.run.end_day for r in results), default=365.0)
    fig, ax = plt.subplots(figsize=(9, 5.2))
    for kind, days in firsts.items():
        days.sort()
        xs = [0.0, *days, horizon]
        ys = [0.0, *(100 * (i + 1) / n for i in range(len(days))), 100 * len(days) / n]
        ax.step(xs, ys, where="post", linewidth=1.5, label=f"{LABELS[kind]} — {100 * len(days) / n:.1f}%")
    ax.axvline(review_day, color="grey", linestyle=":", linewidth=1)
    ax.annotate("12-week review", (review_day, ax.get_ylim()[1] * 0.97), xytext=(4, 0),
                textcoords="offset points", fontsize=8, color="grey", va="top")
    ax.set_xlim(0, horizon)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("days since enrollment")
    ax.set_ylabel("patients referred or offered (% of cohort, cumulative)")
    ax.set_title(title)
    ax.legend(loc="center right", frameon=False)
    fig.tight_layout()
    _save(fig, path)


def _outcome(result: PatientResult) -> str:
    kinds = {kind for _, kind, _, _ in result.run.actions}
    if result.run.status in ("exited", "withdrawn"):
        return "exited or withdrawn"
    if "refer_vertebral_augmentation" in kinds:
        return "referred for augmentation"
    if "refer_physical_therapy" in kinds:
        return "referred to physical therapy only"
    return "neither referral"


def _band(ax: Any, by_week: dict[int, list[int]], label: str, color: str, patients: int) -> None:
    weeks = sorted(w for w, values in by_week.items() if len(values) >= MIN_REPORTS)
    if not weeks:
        return
    means = [mean(by_week[w]) for w in weeks]
    qs = [quantiles(by_week[w], n=4, method="inclusive") for w in weeks]
    ax.plot(weeks, means, color=color, linewidth=1.8, label=f"{label} ({patients:,} patients)")
    ax.fill_between(weeks, [q[0] for q in qs], [q[2] for q in qs], color=color, alpha=0.13, linewidth=0)


def pain_plot(results: list[PatientResult], path: Path, title: str, persistent_nrs: float, review_day: float) -> None:
    """Reported pain by week: mean and interquartile band, by pathway outcome and by pain course."""
    _style()
    by_outcome: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    by_course: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    counts: Counter[str] = Counter()
    for result in results:
        outcome = _outcome(result)
        course = "non-responder" if result.non_responder else "responder"
        counts.update((outcome, course))
        for day, nrs in [(0.0, result.pain_nrs), *result.run.pain]:
            week = int(day // 7)
            by_outcome[outcome][week].append(nrs)
            by_course[course][week].append(nrs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), sharey=True)
    outcomes = (("referred for augmentation", "tab:red"), ("referred to physical therapy only", "tab:blue"),
                ("neither referral", "tab:green"))
    for name, color in outcomes:
        if name in by_outcome:
            _band(axes[0], by_outcome[name], name, color, counts[name])
    for name, color in (("responder", "tab:blue"), ("non-responder", "tab:red")):
        if name in by_course:
            _band(axes[1], by_course[name], name, color, counts[name])
    subtitles = ("by pathway outcome (exited or withdrawn left out)", "by the model's pain course")
    for ax, sub in zip(axes, subtitles, strict=True):
        ax.axhline(persistent_nrs, color="black", linestyle="--", linewidth=0.8)
        ax.annotate(f"persistent pain: NRS {persistent_nrs:g} or more", (52, persistent_nrs), xytext=(0, 3),
                    textcoords="offset points", fontsize=8, ha="right")
        ax.axvline(review_day / 7, color="grey", linestyle=":", linewidth=1)
        ax.annotate("12-week review", (review_day / 7, 0.3), xytext=(3, 0), textcoords="offset points",
                    fontsize=8, color="grey")
        ax.set_xlabel("week since enrollment")
        ax.set_xlim(0, 53)
        ax.set_title(sub)
        ax.set_ylim(0, 10.2)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", frameon=False)
    axes[0].set_ylabel("reported pain, NRS 0-10 (mean; band: interquartile range)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def compare_plot(table: list[dict[str, Any]], patients: int, path: Path, title: str) -> None:
    """Share of patients with each action kind under the current and the changed definition."""
    _style()
    changed = [row for row in table if row["patients_difference"] or row["actions_difference"]]
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.6 * max(1, len(changed))))
    if not changed:
        ax.text(0.5, 0.5, "no difference in any action kind", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        names = [LABELS.get(row["kind"], row["kind"].replace("_", " ")) for row in changed]
        ys = list(range(len(changed)))
        current = [100 * row["current_patients"] / patients for row in changed]
        variant = [100 * row["changed_patients"] / patients for row in changed]
        ax.barh([y - 0.2 for y in ys], current, height=0.38, label="current guideline", color="tab:grey")
        ax.barh([y + 0.2 for y in ys], variant, height=0.38, label="changed", color="tab:orange")
        for y, row, before, after in zip(ys, changed, current, variant, strict=True):
            ax.annotate(f"{before:.1f}% → {after:.1f}%: {row['patients_difference']:+,} patients, "
                        f"{row['actions_difference']:+,} actions", (max(before, after), y), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.set_yticks(ys, names)
        ax.invert_yaxis()
        ax.set_xlabel("patients with at least one such action (% of cohort); action kinds that changed")
        ax.set_xlim(0, max(current + variant) * 1.6 + 1)
        ax.legend(loc="lower right", frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def all_plots(results: list[PatientResult], out: Path, title: str, persistent_nrs: float,
              review_day: float) -> list[Path]:
    """The three plots of a run; their paths."""
    paths = [out / "weekly_demand.png", out / "cumulative_referrals.png", out / "pain_trajectories.png"]
    demand_plot(results, paths[0], f"Weekly demand by order kind — {title}")
    referral_plot(results, paths[1], f"Cumulative referrals — {title}", review_day)
    pain_plot(results, paths[2], f"Reported pain by outcome — {title}", persistent_nrs, review_day)
    return paths
