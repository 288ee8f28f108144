"""Agreement with the durable engine: the same synthetic patients through the real workflow.

Each patient becomes a scenario (``pathway.contract.Scenario``: the enrollment, every event the
cohort driver applied or refused, by day, and the horizon as ``until_day``), runs through
:func:`cli.simulate.simulate` on the time-skipping test server, and the workflow's actions are
compared with the driver's: kind, day (both rounded to the workflow's 3 decimals) and id.
Temporal is imported only when a check runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cohort.engine import PatientRun, run_patient
from cohort.model import CohortModel
from cohort.patients import Patient, draw_patient
from pathway.contract import Scenario, parse_scenario
from pathway.guideline import PathwayDefinition

Key = tuple[str, float, str]  # kind, day, id


def scenario_of(patient: Patient, run: PatientRun, horizon: float) -> Scenario:
    """The scenario the workflow is given for a patient: the events the driver saw, by day."""
    events = [{"day": day, **event.model_dump(mode="json", exclude_none=True)} for day, event in run.events]
    return parse_scenario({"name": f"cohort {patient.enrollment.id}", "patient": patient.enrollment.model_dump(),
                           "events": events, "until_day": float(horizon)})


def keys_of_run(run: PatientRun) -> list[Key]:
    """The driver's actions as (kind, day, id)."""
    return [(kind, round(day, 3), action_id) for day, kind, action_id, _ in run.actions]


def keys_of_result(result: dict[str, Any]) -> list[Key]:
    """The workflow's actions as (kind, day, id)."""
    return [(a["kind"], round(a["day"], 3), a["id"]) for a in result["actions"]]


def differences(ours: list[Key], theirs: list[Key]) -> list[str]:
    """Lines naming every action that one engine took and the other did not (or took otherwise)."""
    if ours == theirs:
        return []
    lines = [f"  only in the cohort driver: {k[0]} day {k[1]:g} ({k[2]})" for k in ours if k not in theirs]
    lines += [f"  only in the workflow:      {k[0]} day {k[1]:g} ({k[2]})" for k in theirs if k not in ours]
    if not lines:
        lines.append("  the same actions in another order")
    return lines


def choose(runs: Iterable[PatientRun], k: int) -> list[int]:
    """``k`` patient indexes, in patient order: first those that bring an action kind (or a review
    reason, or an end status) no earlier choice had, then the earliest of the rest."""
    runs = list(runs)
    seen: set[str] = set()
    chosen: list[int] = []
    for run in runs:
        if len(chosen) == k:
            break
        marks = {kind for _, kind, _, _ in run.actions}
        marks |= {details for _, kind, _, details in run.actions if kind == "request_clinician_review"}
        marks |= {f"status:{run.status}"} | ({"overdue_escalation"} if run.escalations else set())
        if marks - seen:
            seen |= marks
            chosen.append(run.index)
    rest = [run.index for run in runs if run.index not in chosen]
    return sorted(chosen + rest[: max(0, k - len(chosen))])


@dataclass
class Agreement:
    """The outcome of a check: how many patients agreed, and the differences of the others."""

    checked: int
    disagreements: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not self.disagreements


async def check_temporal(model: CohortModel, defn: PathwayDefinition, seed: int, indexes: list[int],
                         progress: Callable[[int], None] | None = None) -> Agreement:
    """Run these patients through the workflow on one time-skipping server and compare."""
    from cli.simulate import simulate, start_test_server

    env = await start_test_server()
    found: dict[str, list[str]] = {}
    try:
        for done, index in enumerate(indexes, 1):
            patient = draw_patient(model, seed, index)
            run = run_patient(defn, patient, model.horizon_days, keep_events=True)
            result = await simulate(scenario_of(patient, run, model.horizon_days), env, defn)
            lines = differences(keys_of_run(run), keys_of_result(result))
            if lines:
                found[patient.enrollment.id] = lines
            if progress:
                progress(done)
    finally:
        await env.shutdown()
    return Agreement(checked=len(indexes), disagreements=found)
