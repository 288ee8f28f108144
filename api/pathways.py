"""The API's side of Temporal: start a pathway, hand it an event, read where it stands.

Acceptance is a signal: the server stores it durably even while no worker runs, so a 202 never
depends on a worker. Reads try the workflow's ``state`` query with a timeout (a query needs a
live worker, even on a closed workflow) and otherwise fall back to what the server and the
order book hold without one: the result in the history of an ended pathway, the search
attributes of a running one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from pathway.contract import Enrollment
from pathway.guideline import PathwayDefinition
from workflows import search_attributes as sa
from workflows.models import PathwayResult, PathwayState, TimelineEntry, workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

# Server states in which the pathway still takes events.
_OPEN = (WorkflowExecutionStatus.RUNNING,)
# How long a duplicate's answer waits for the pathway to say whether it refused the event.
_REFUSAL_WAIT = timedelta(seconds=1)


def temporal_unavailable(err: RPCError) -> ApiError:
    """The answer when the Temporal server itself cannot be reached (not the caller's fault)."""
    return ApiError(503, "the workflow service is unavailable; retry later", [f"temporal: {err.status.name}"])


@dataclass
class PathwayView:
    """What could be learned about one pathway, and where it came from."""

    source: str
    status: str
    state: PathwayState | None = None
    result: PathwayResult | None = None
    description: WorkflowExecutionDescription | None = None
    notes: list[str] = field(default_factory=list)

    def search_attribute(self, key: Any) -> Any:
        """A typed search attribute of the workflow, if the server has it."""
        if self.description is None:
            return None
        return self.description.typed_search_attributes.get(key)


class Pathways:
    """Start, signal and read patient pathway workflows."""

    def __init__(self, client: Client, task_queue: str, definition: PathwayDefinition,
                 rpc_timeout: float = 10.0, query_timeout: float = 3.0):
        self.client = client
        self.task_queue = task_queue
        self.definition = definition
        self.rpc_timeout = timedelta(seconds=rpc_timeout)
        self.query_timeout = timedelta(seconds=query_timeout)

    def handle(self, patient_id: str):
        """The typed handle of a patient's pathway (latest run)."""
        return self.client.get_workflow_handle_for(PatientPathwayWorkflow.run, workflow_id_for(patient_id))

    async def start(self, enrollment: Enrollment) -> bool:
        """Start the pathway; False if it already exists (or existed: ids are never reused)."""
        try:
            await start_pathway(self.client, enrollment, definition=self.definition, task_queue=self.task_queue,
                                rpc_timeout=self.rpc_timeout)
        except WorkflowAlreadyStartedError:
            return False
        except RPCError as err:
            raise temporal_unavailable(err) from None
        return True

    async def describe(self, patient_id: str) -> WorkflowExecutionDescription | None:
        """The server's description of the pathway; None if the server no longer has it."""
        try:
            return await self.handle(patient_id).describe(rpc_timeout=self.rpc_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise temporal_unavailable(err) from None

    async def ensure_open(self, patient_id: str) -> None:
        """409 unless the pathway is running and can take an event."""
        desc = await self.describe(patient_id)
        if desc is None or desc.status not in _OPEN:
            raise await self.ended(patient_id, desc)

    async def ended(self, patient_id: str, desc: WorkflowExecutionDescription | None) -> ApiError:
        """The 409 for an ended pathway, naming its own status (withdrawn, exited, completed)
        when its result can be read at once, else the workflow service's status."""
        status = _ended_status(desc)
        if desc is not None and desc.status == WorkflowExecutionStatus.COMPLETED:
            with contextlib.suppress(RPCError, WorkflowFailureError):
                status = (await self.handle(patient_id).result(rpc_timeout=self.query_timeout)).status
        return ApiError(409, "the pathway has ended", [f"pathway: {status}; no more events are taken"])

    async def send_event(self, patient_id: str, payload: dict[str, Any]) -> None:
        """Signal the event; once this returns the server holds it durably."""
        try:
            await self.handle(patient_id).signal(PatientPathwayWorkflow.event, payload, rpc_timeout=self.rpc_timeout)
        except RPCError as err:
            # The pathway closed between the status check and the signal.
            if err.status == RPCStatusCode.NOT_FOUND:
                raise await self.ended(patient_id, await self.describe(patient_id)) from None
            raise temporal_unavailable(err) from None

    async def event_refused(self, patient_id: str, event_id: str) -> bool | None:
        """Whether the running pathway refused the event with this id (and holds no event with it): then
        it is judged again if sent again. None when no worker answers within a second (or the query
        timeout, if shorter): a duplicate is answered at once, not after the state query's wait."""
        try:
            return bool(await self.handle(patient_id).query(
                PatientPathwayWorkflow.event_refused, event_id, rpc_timeout=min(self.query_timeout, _REFUSAL_WAIT)))
        except (RPCError, WorkflowQueryFailedError):
            return None

    async def send_task_refused(self, patient_id: str, payload: dict[str, Any]) -> bool:
        """Tell the pathway that an order's task was rejected or failed (a durable signal; the
        pathway acts on it once). False if the pathway has ended: nothing waits for the order."""
        try:
            await self.handle(patient_id).signal(PatientPathwayWorkflow.task_refused, payload,
                                                 rpc_timeout=self.rpc_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise temporal_unavailable(err) from None
        return True

    async def view(self, patient_id: str) -> PathwayView:
        """The live state if a worker answers in time, else what the server holds."""
        desc = await self.describe(patient_id)
        if desc is None:
            return PathwayView(source="registry", status="unknown", notes=[
                "the workflow service no longer holds this pathway; state from the API's records and the order book"])
        handle = self.handle(patient_id)
        try:
            state = await handle.query(PatientPathwayWorkflow.state, rpc_timeout=self.query_timeout)
            return PathwayView(source="workflow_query", status=state.status, state=state, description=desc)
        except RPCError as err:
            if err.status == RPCStatusCode.UNAVAILABLE:
                raise temporal_unavailable(err) from None
            note = f"no worker answered the state query within {self.query_timeout.total_seconds():g}s"
        except WorkflowQueryFailedError:
            note = "the workflow could not answer the state query"
        if desc.status in _OPEN:
            phase = desc.typed_search_attributes.get(sa.PATHWAY_PHASE)
            return PathwayView(source="search_attributes", status="running", description=desc, notes=[
                note + "; phase and next review from the workflow's search attributes, orders from the order book"
                + ("" if phase else " (no search attributes on this server)")])
        try:
            result = await handle.result(rpc_timeout=self.rpc_timeout)
        except WorkflowFailureError:
            return PathwayView(source="order_book", status=_ended_status(desc), description=desc,
                               notes=[note + "; the workflow did not complete normally: orders from the order book"])
        except RPCError as err:
            raise temporal_unavailable(err) from None
        return PathwayView(source="workflow_result", status=result.status, result=result, description=desc,
                           notes=[note + "; the pathway has ended: its result read from the workflow history"])

    async def timeline(self, patient_id: str) -> list[TimelineEntry] | None:
        """The timeline query; None when no worker answers in time."""
        try:
            return await self.handle(patient_id).query(PatientPathwayWorkflow.timeline, rpc_timeout=self.query_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.UNAVAILABLE:
                raise temporal_unavailable(err) from None
            return None  # no worker in time, or the server no longer holds the pathway
        except WorkflowQueryFailedError:
            return None


def _ended_status(desc: WorkflowExecutionDescription | None) -> str:
    if desc is None:
        return "no longer held by the workflow service"
    return desc.status.name.lower() if desc.status else "unknown"


def approx_day(started_at: datetime | None) -> float | None:
    """Pathway day from the API's record of the start (within a second of the workflow's clock)."""
    if started_at is None:
        return None
    return round((datetime.now(UTC) - started_at).total_seconds() / 86400, 3)
