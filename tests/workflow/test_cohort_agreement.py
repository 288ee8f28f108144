"""The cohort driver agrees with the durable workflow, action for action.

Synthetic patients (seeds/cohorts/default.json) are drawn until every action kind has occurred,
at least 20 of them are chosen so that every action kind (and every clinician-review reason and
end status seen) is represented, and each runs through the real workflow on the time-skipping
server as a scenario of the events the driver saw. Kind, day (3 decimals) and id must match.
"""

from __future__ import annotations

import pytest

from cli.simulate import simulate
from cohort.agreement import choose, differences, keys_of_result, keys_of_run, scenario_of
from cohort.engine import run_patient
from cohort.model import load_model
from cohort.patients import draw_patient
from pathway.contract import ACTION_KINDS
from tests.helpers import ROOT

SEED = 2
AT_LEAST = 20


@pytest.mark.asyncio(loop_scope="session")
async def test_varied_cohort_patients_get_the_same_actions_from_the_workflow(ts_env, definition):
    model = load_model(ROOT / "seeds" / "cohorts" / "default.json")
    runs, seen = [], set()
    for index in range(2000):
        runs.append(run_patient(definition, draw_patient(model, SEED, index), model.horizon_days))
        seen |= {kind for _, kind, _, _ in runs[-1].actions}
        if seen == set(ACTION_KINDS) and len(runs) >= AT_LEAST:
            break
    chosen = choose(runs, AT_LEAST)
    assert len(chosen) >= AT_LEAST
    covered = {kind for i in chosen for _, kind, _, _ in runs[i].actions}
    assert covered == set(ACTION_KINDS), f"not represented: {sorted(set(ACTION_KINDS) - covered)}"
    assert any(runs[i].escalations for i in chosen)  # overdue results escalate on the way too
    assert {runs[i].status for i in chosen} >= {"completed", "exited", "withdrawn"}

    disagreements = {}
    for index in chosen:
        patient = draw_patient(model, SEED, index)
        run = run_patient(definition, patient, model.horizon_days, keep_events=True)
        result = await simulate(scenario_of(patient, run, model.horizon_days), env=ts_env, definition=definition)
        assert result["status"] == run.status
        lines = differences(keys_of_run(run), keys_of_result(result))
        if lines:
            disagreements[patient.enrollment.id] = lines
    assert not disagreements, "\n".join(f"{pid}:\n" + "\n".join(lines) for pid, lines in disagreements.items())
