"""The JSON the read endpoints answer with, from whatever source could be read.

The live workflow query gives everything. Without a worker (or once a pathway has ended and no
worker answers) the answer is assembled from the workflow's result in its history, its search
attributes, the order book and the API's registry; ``source``, ``live`` and ``notes`` say which,
and fields nobody could read are null rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from activities.order_book import OrderBook
from activities.order_model import Order
from activities.results_after_end import RecordedAfterEnd, recorded_after_end
from api.models import ActionTaken, OrderSummary, PatientState, Timeline
from api.pathways import Pathways, PathwayView, approx_day
from api.records import in_thread
from api.registry import EnrollmentRecord
from pathway.contract import Action
from pathway.guideline import PathwayDefinition
from workflows import search_attributes as sa
from workflows.models import TimelineEntry, decision_notes


def _order_summary(order: Order) -> OrderSummary:
    return OrderSummary(id=order.id, kind=order.kind, resource=order.resource, title=order.title,
                        status=order.status, priority=order.priority, day=order.day,
                        codes=[c for c in order.codes if c.code], url=f"/v1/orders/{order.id}")


def _action_from_order(order: Order) -> ActionTaken:
    return ActionTaken(day=order.day, kind=order.kind, rationale=order.rationale, citation=order.citation,
                       details=order.details, id=order.action_id, order_id=order.id)


def _action(action: Action, order_id: str | None) -> ActionTaken:
    return ActionTaken(**action.model_dump(mode="json"), order_id=order_id)


def _after_end_entry(result: RecordedAfterEnd) -> TimelineEntry:
    note = result.note()
    return TimelineEntry(day=note.day, at=result.recorded_at or result.order.updated_at, entry="note",
                         summary=note.text,
                         data={"id": note.id, "citation": note.citation, "after_end": True,
                               "event_id": result.result_key, "order_id": result.order.id,
                               **({"task_id": result.task.id} if result.task else {})})


async def read_state(record: EnrollmentRecord, pathways: Pathways, book: OrderBook,
                     definition: PathwayDefinition) -> tuple[PatientState, list[Order]]:
    """The patient's state as GET /v1/patients/{id} answers it (results taken after the end among its
    notes), and the patient's orders it was read with."""
    view = await pathways.view(record.patient_id)
    orders = await in_thread(book.list, patient_id=record.patient_id)
    after_end = await in_thread(recorded_after_end, book, record.workflow_id, orders=orders) \
        if view.status != "running" else []  # one pathway per patient: its orders are the patient's
    return state_body(record, view, orders, definition, after_end), orders


def state_body(record: EnrollmentRecord, view: PathwayView, orders: list[Order],
               definition: PathwayDefinition, after_end: Sequence[RecordedAfterEnd] = ()) -> PatientState:
    """The answer of GET /v1/patients/{id} (``after_end``: the results taken after the end, as notes)."""
    enrollment = record.enrollment
    order_of_action = {o.action_id: o.id for o in orders}
    pending = [_order_summary(o) for o in orders if o.is_open]
    body: dict[str, Any] = {
        "patient_id": record.patient_id, "workflow_id": record.workflow_id, "source": view.source,
        "live": view.state is not None, "source_notes": list(view.notes), "notes": None, "status": view.status,
        "fracture_level": enrollment["fracture_level"], "pending_orders": pending,
    }
    if view.state is not None:
        s = view.state
        body.update(
            phase=s.phase, paused=s.paused, day=s.day, enrolled_at=s.enrolled_at.isoformat(),
            guideline_version=s.guideline_version, latest_pain=s.latest_pain.model_dump(),
            escalation_state=s.escalation_state,
            next_review={"day": s.next_review_day, "at": s.next_review_at.isoformat() if s.next_review_at else None}
            if s.next_review_day is not None else None,
            next_step=s.next_step,
            actions=[_action(a, s.orders.get(a.id)) for a in s.actions], rejected=s.rejected,
            rejected_dropped=s.rejected_dropped, notes=[*s.notes, *(r.note() for r in after_end)])
        return PatientState(**body)
    version = view.search_attribute(sa.GUIDELINE_VERSION)
    enrolled_at = record.started_at.isoformat() if record.started_at else None
    if view.result is not None:
        r = view.result
        version = r.guideline_version or version
        body.update(phase=r.status, paused=False, day=r.day,
                    enrolled_at=r.enrolled_at.isoformat() if r.enrolled_at else enrolled_at,
                    guideline_version=version or definition.version,
                    latest_pain=r.latest_pain.model_dump() if r.latest_pain else None,
                    escalation_state=view.search_attribute(sa.ESCALATION_STATE), next_review=None, next_step=None,
                    actions=[_action(a, order_of_action.get(a.id)) for a in r.actions], rejected=r.rejected,
                    rejected_dropped=r.rejected_dropped, notes=[*r.notes, *(x.note() for x in after_end)])
    else:
        phase = view.search_attribute(sa.PATHWAY_PHASE)
        review_at = view.search_attribute(sa.NEXT_REVIEW_AT)
        day = approx_day(record.started_at) if view.status == "running" else None
        body.update(phase=phase, paused=phase == "paused", day=day,
                    enrolled_at=enrolled_at, guideline_version=version or definition.version, latest_pain=None,
                    escalation_state=view.search_attribute(sa.ESCALATION_STATE),
                    next_review={"day": None, "at": review_at.isoformat()} if review_at else None, next_step=None,
                    actions=[_action_from_order(o) for o in orders], rejected=None)
    if not version:
        body["source_notes"].append(f"guideline_version: the API's current definition ({definition.version}); "
                                    "the pathway keeps the one it was enrolled with")
    if body["latest_pain"] is None:
        body["source_notes"].append("latest_pain: known only to the live workflow")
    if body["notes"] is None:
        body["source_notes"].append("notes: the decision notes are known only to the live workflow or its result")
    return PatientState(**body)


def timeline_body(record: EnrollmentRecord, entries: list[TimelineEntry] | None,
                  orders: list[Order], query_timeout: float, after_end: Sequence[RecordedAfterEnd] = ()) -> Timeline:
    """The answer of GET /v1/patients/{id}/timeline (``after_end``: the results taken after the end, last)."""
    if entries is not None:
        entries = [*entries, *map(_after_end_entry, after_end)]
        return Timeline(patient_id=record.patient_id, source="workflow_query", live=True, source_notes=[],
                        notes=decision_notes(entries), entries=entries)
    fallback = [TimelineEntry(day=o.day, at=o.created_at, entry="action", summary=f"{o.kind}: {o.rationale}",
                              data={"id": o.action_id, "kind": o.kind}) for o in orders]
    fallback += map(_after_end_entry, after_end)
    return Timeline(patient_id=record.patient_id, source="order_book", live=False, entries=fallback,
                    notes=decision_notes(fallback),
                    source_notes=[f"no worker answered the timeline query within {query_timeout:g}s: actions (and "
                                  "results taken after the end) from the order book only (events and notes appear "
                                  "once a worker runs)"])
