"""The watch over results still awaited when a pathway completes: the 12-month screening, ordered
on the day the pathway completes, still reaches the care team if its result never comes."""

from __future__ import annotations

import pytest
from temporalio.worker import Replayer

from activities.results_after_end import record_result_after_end
from pathway.contract import parse_event
from tests.helpers import NO_SERVER_FEATURES, TEST_CONVERTER, advance, enrollment, every_result_comes_back, make_worker
from worker.runtime import sandbox_runner
from workflows.open_orders_watch import OpenOrdersWatchWorkflow, watch_workflow_id
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")
SCREENING = "order_adjacent_fracture_screening:day-365"


async def _a_completed_year(env, book, task_queue, patient_id):
    """A patient whose MRI, DXA and films all came back, to completion on day 365."""
    handle = await start_pathway(env.client, enrollment(patient_id, pain_nrs=5), task_queue=task_queue,
                                 options=NO_SERVER_FEATURES)
    await every_result_comes_back(env, handle)
    await advance(env, handle, 366)  # the clock moved exactly (awaiting the result lets it run on to the watch)
    return handle, await handle.query(PatientPathwayWorkflow.state)


def _escalations(book, workflow_id):
    return [o for o in book.list(workflow_id=workflow_id) if o.kind == "escalate_overdue_result"]


async def test_a_screening_result_that_never_comes_is_escalated_after_completion(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle, result = await _a_completed_year(ts_env, order_book, task_queue, "pt-watch-01")
        assert result.status == "completed"
        (note,) = [n for n in result.notes if n.id == "results_awaited_at_completion"]
        assert note.day == 365 and f"{SCREENING} (ordered on day 365, overdue after day 379)" in note.text
        before = {o.details["order_action_id"] for o in _escalations(order_book, handle.id)}
        assert SCREENING not in before  # every earlier order was answered or escalated by the pathway
        await advance(ts_env, handle, 378.9)
        assert SCREENING not in {o.details["order_action_id"] for o in _escalations(order_book, handle.id)}
        await advance(ts_env, handle, 380)
        watch = ts_env.client.get_workflow_handle_for(OpenOrdersWatchWorkflow.run, watch_workflow_id(handle.id))
        assert await watch.result() == [SCREENING]
        (task,) = [o for o in _escalations(order_book, handle.id) if o.details["order_action_id"] == SCREENING]
        assert task.day == 379 and task.resource == "Task" and task.priority == "urgent"
        assert "the pathway completed on day 365" in task.rationale and "(verify)" in task.citation
        screening = next(o for o in order_book.list(workflow_id=handle.id) if o.action_id == SCREENING)
        assert task.details["order_id"] == screening.id and screening.status == "active"
        # The watch's own history replays (its code is deterministic, as the pathway's is).
        replayer = Replayer(workflows=[OpenOrdersWatchWorkflow], data_converter=TEST_CONVERTER,
                            workflow_runner=sandbox_runner(isolated=True))
        await replayer.replay_workflow(await watch.fetch_history())


async def test_a_screening_result_after_completion_leaves_nothing_to_escalate(ts_env, order_book, task_queue):
    async with make_worker(ts_env, order_book, task_queue):
        handle, _ = await _a_completed_year(ts_env, order_book, task_queue, "pt-watch-02")
        await advance(ts_env, handle, 370)
        # As the API takes it after the end: it fulfils the open screening.
        done = record_result_after_end(order_book, workflow_id=handle.id, patient_id="pt-watch-02", day=370,
                                       event=parse_event({"type": "radiograph", "height_loss_pct": 25}),
                                       result_key="after-end-1", status="completed", enrolled_level="L2")
        assert done.fulfilled
        await advance(ts_env, handle, 380)
        watch = ts_env.client.get_workflow_handle_for(OpenOrdersWatchWorkflow.run, watch_workflow_id(handle.id))
        assert await watch.result() == []
        assert SCREENING not in {o.details["order_action_id"] for o in _escalations(order_book, handle.id)}


async def test_the_completion_note_also_names_the_results_escalated_already(ts_env):
    """The DXA never resulted was escalated on day 14; at completion the note names it beside the results
    the watch still waits for, so no open order is left out of the last word."""
    from cli.simulate import simulate
    from pathway.contract import parse_scenario

    events = [{"day": 2, "type": "mri", "etiology": "osteoporotic"},
              *({"day": day, "type": "pain", "nrs": 3} for day in range(10, 365, 10))]
    scenario = parse_scenario({"name": "DXA never resulted", "until_day": 366,
                               "patient": {"id": "pt-watch-03", "fracture_level": "L2", "height_loss_pct": 25,
                                           "pain_nrs": 5}, "events": events})
    result = await simulate(scenario, env=ts_env)
    assert result["status"] == "completed"
    (note,) = [n for n in result["notes"] if n["id"] == "results_awaited_at_completion"]
    assert f"{SCREENING} (ordered on day 365" in note["text"]
    assert "escalated to the care team already: order_dxa (ordered on day 0)" in note["text"]
