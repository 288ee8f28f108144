"""Activities: where a pathway's decisions become orders in the order book.

Every activity is idempotent (keyed by workflow id + action id), so Temporal's retries and
workflow replays never order twice. Invalid data fails at once (non-retryable); anything else
(a locked or unavailable database) is retried with backoff by the caller's retry policy.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.database import IntegrityError, as_stored
from activities.order_book import OrderBook, order_key
from activities.order_model import Order, OrderStatus, RequestResource
from activities.results_after_end import record_result_after_end
from pathway.contract import ACTION_KINDS, Action, ContractError, parse_event
from pathway.guideline import Code
from pathway.results import ORDERS_ANSWERED_BY, overdue_note_id
from workflows.metrics import ORDERS_WRITTEN, OVERDUE_ESCALATION


class OrderRequest(BaseModel):
    """One action to record as an order, referral or task."""

    workflow_id: str
    patient_id: str
    action: Action
    title: str
    resource: RequestResource
    codes: list[Code] = Field(default_factory=list)


class OrderReceipt(BaseModel):
    """The order as the book holds it."""

    order_id: str
    status: OrderStatus
    created: bool


class CancelRequest(BaseModel):
    """Cancel a pathway's open orders of some kinds (e.g. on a pathologic fracture)."""

    workflow_id: str
    kinds: list[str]
    reason: str


class ResultRequest(BaseModel):
    """An imaging or DXA result that fulfils an open order it answers: the one the pathway's decisions
    matched it to as it arrived (decisions revision 6, :func:`pathway.results.observe`), or else the
    oldest."""

    workflow_id: str
    event_type: str
    day: float
    result_key: str = Field(description="Unique per result: a retry fulfils nothing more.")
    order_action_id: str | None = Field(None, description="The order's action id ('' for none); None: the oldest")


class ResultAfterEndRequest(BaseModel):
    """A result the pathway held in its inbox when it ended: it still fulfils an open order."""

    workflow_id: str
    patient_id: str
    event: dict[str, Any]
    day: float
    result_key: str
    status: str
    enrolled_level: str
    enrolled_height_loss: float
    red_flags: list[str] = Field(default_factory=list, description="the enrollment's red flags")


class OverdueRequest(BaseModel):
    """An imaging order still without a result after the overdue limit."""

    workflow_id: str
    patient_id: str
    order_action_id: str
    order_kind: str
    order_day: float
    day: float
    rationale: str
    citation: str


def _count_written(kind: str, created: bool) -> None:
    """One order written (or found written already: a retry or a replay) in the activity's metrics."""
    activity.metric_meter().create_counter(ORDERS_WRITTEN, "Orders written to the order book").add(
        1, {"kind": kind, "created": "true" if created else "false"})


class RefusalRequest(BaseModel):
    """A rejected or failed order the care team must hear about (one task per order)."""

    workflow_id: str
    patient_id: str
    order_id: str
    order_action_id: str
    task_status: str
    day: float
    title: str
    rationale: str
    citation: str


REFUSAL_KIND = "alert_task_refused"


def place_refusal_alert(book: OrderBook, request: RefusalRequest) -> tuple[Order, bool]:
    """The urgent care-team task about a refused order, placed once per order (by the pathway, or by
    the API when the pathway has ended); the order and whether this call created it."""
    action_id = f"refused:{request.order_action_id}"
    return book.place(
        idempotency_key=order_key(request.workflow_id, action_id), patient_id=request.patient_id,
        workflow_id=request.workflow_id, action_id=action_id, kind=REFUSAL_KIND,
        resource="Task", priority="urgent", day=request.day, title=request.title, rationale=request.rationale,
        citation=request.citation, codes=[],
        details={"order_id": request.order_id, "order_action_id": request.order_action_id,
                 "task_status": request.task_status})


class OrderBatch(BaseModel):
    """Everything one decision step writes, in one activity call: the result that came in, the
    orders decided (each with the cancellations it carries), the results they adopted, the overdue
    escalations."""

    workflow_id: str
    result: ResultRequest | None = None
    orders: list[OrderRequest] = Field(default_factory=list)
    # Results this step's orders adopted (pathway.results.adopt, decisions revision 7): written after them.
    adopted: list[ResultRequest] = Field(default_factory=list)
    overdue: list[OverdueRequest] = Field(default_factory=list)


class BatchReceipt(BaseModel):
    """What a batch wrote: order ids by action id, and the actions refused with the reason."""

    placed: dict[str, str] = Field(default_factory=dict)
    refused: dict[str, str] = Field(default_factory=dict)


class OrderActivities:
    """The order-book activities, bound to one database."""

    def __init__(self, book: OrderBook):
        self.book = book

    @activity.defn(name="place_order")
    def place_order(self, request: OrderRequest) -> OrderReceipt:
        """Write the order unless it exists already (idempotent)."""
        action = request.action
        if action.kind not in ACTION_KINDS or not action.id:
            raise ApplicationError(f"action: invalid kind or missing id ({action.kind!r})", non_retryable=True,
                                   type="InvalidOrder")
        key = order_key(request.workflow_id, action.id)
        try:
            order, created = self.book.place(
                idempotency_key=key, patient_id=request.patient_id, workflow_id=request.workflow_id,
                action_id=action.id, kind=action.kind, resource=request.resource,
                priority=str(action.details.get("priority", "routine")), day=action.day,
                title=request.title, rationale=action.rationale, citation=action.citation,
                details=action.details, codes=[c.model_dump() for c in request.codes])
            if action.kind == "stop_calcitonin":
                self.book.close_open(request.workflow_id, ["start_calcitonin"], "stopped", action.rationale)
            if action.details.get("expedite_mri"):  # a deficit reported while the enrollment MRI is pending
                self.book.expedite(request.workflow_id, "order_mri", f"urgent: {action.kind} on day {action.day:g}")
        except IntegrityError as exc:
            raise ApplicationError(f"order: {exc}", non_retryable=True, type="InvalidOrder") from exc
        activity.logger.info("order placed" if created else "order already placed",
                             extra={"action_kind": action.kind, "order_id": order.id})
        _count_written(action.kind, created)
        return OrderReceipt(order_id=order.id, status=order.status, created=created)

    @activity.defn(name="place_orders")
    def place_orders(self, batch: OrderBatch) -> BatchReceipt:
        """One decision step's writes, in the order the step made them, committed together (one
        disk flush for the step). Each write is idempotent, so a retry after a failure writes only
        what is missing and never orders twice; an invalid order is refused alone (named in the
        receipt), the others still go out."""
        receipt = BatchReceipt()
        with self.book.transaction():
            if batch.result is not None:
                self.record_result(batch.result)
            for request in batch.orders:
                action = request.action
                try:
                    with self.book.database.savepoint():  # a refused order undoes its own writes only
                        receipt.placed[action.id] = self.place_order(request).order_id
                except ApplicationError as exc:
                    receipt.refused[action.id or action.kind] = str(exc)
                    continue
                if action.details.get("cancels"):
                    self.cancel_open_orders(CancelRequest(
                        workflow_id=batch.workflow_id, kinds=action.details["cancels"],
                        reason=f"{action.kind} on day {action.day:g}"))
            for adopted in batch.adopted:
                self.record_result(adopted)
            for overdue in batch.overdue:
                escalated = self.escalate_overdue_result(overdue)
                receipt.placed[overdue_note_id(overdue.order_action_id)] = escalated.order_id
        return receipt

    @activity.defn(name="cancel_open_orders")
    def cancel_open_orders(self, request: CancelRequest) -> list[str]:
        """Cancel what is pending; already-closed orders are left as they are."""
        ids = self.book.close_open(request.workflow_id, request.kinds, "cancelled", request.reason)
        activity.logger.info("orders cancelled", extra={"count": len(ids)})
        return ids

    @activity.defn(name="record_result")
    def record_result(self, request: ResultRequest) -> list[str]:
        """Fulfil the open order that this result answers (closed loop), as the pathway's decisions
        match them (:mod:`pathway.results`)."""
        kinds = ORDERS_ANSWERED_BY.get(request.event_type)
        if not kinds:
            raise ApplicationError(f"event_type: {request.event_type!r} is not a result", non_retryable=True)
        # As the database keeps it (a NUL in a signal's event id as U+FFFD), so that a retry finds it.
        reason = as_stored(f"{request.event_type} result on day {request.day:g} [{request.result_key}]")
        done = [o.id for o in self.book.list(workflow_id=request.workflow_id) if o.status_reason == reason]
        if done or request.order_action_id == "":  # answered already (a retry), or by no open order
            ids = done
        else:
            # Before revision 6 (no order named): the oldest placed by the result's day, as the decisions match it.
            ids = self.book.close_open(request.workflow_id, kinds, "completed", reason, oldest_first=True, limit=1,
                                       awaiting_result=True, action_id=request.order_action_id,
                                       placed_by=request.day if request.order_action_id is None else None)
        activity.logger.info("result recorded", extra={"event_type": request.event_type, "fulfilled": len(ids)})
        return ids

    @activity.defn(name="escalate_overdue_result")
    def escalate_overdue_result(self, request: OverdueRequest) -> OrderReceipt:
        """One care-team task per overdue order (idempotent), pointing at the order (found by its
        idempotency key: order ids are random). Should the order be missing from the book, the task
        still goes out, naming the action only: an escalation never waits on a lookup."""
        key = order_key(request.workflow_id, overdue_note_id(request.order_action_id))
        target = self.book.get_by_key(order_key(request.workflow_id, request.order_action_id))
        about = {"order_id": target.id} if target else {}
        order, created = self.book.place(
            idempotency_key=key, patient_id=request.patient_id, workflow_id=request.workflow_id,
            action_id=overdue_note_id(request.order_action_id), kind=OVERDUE_ESCALATION, resource="Task",
            priority="urgent", day=request.day, title=f"Result overdue: {request.order_kind}",
            rationale=request.rationale, citation=request.citation,
            details={**about, "order_action_id": request.order_action_id, "order_day": request.order_day},
            codes=[])
        activity.logger.info("overdue result escalated", extra={"action_kind": request.order_kind})
        _count_written(OVERDUE_ESCALATION, created)
        return OrderReceipt(order_id=order.id, status=order.status, created=created)

    @activity.defn(name="escalate_overdue_result_after_end")
    def escalate_overdue_result_after_end(self, request: OverdueRequest) -> OrderReceipt | None:
        """After the pathway ended: escalate as :meth:`escalate_overdue_result` does, unless the order
        no longer waits for its result (it came through the API, the order was cancelled, or its
        performer refused it): then None, and nothing is written."""
        order = self.book.get_by_key(order_key(request.workflow_id, request.order_action_id))
        if order is not None and not self.book.awaits_result(order.id):
            activity.logger.info("result came after the end: nothing to escalate",
                                 extra={"action_kind": request.order_kind})
            return None
        return self.escalate_overdue_result(request)

    @activity.defn(name="record_result_after_end")
    def record_result_after_end(self, request: ResultAfterEndRequest) -> list[str]:
        """As the API does for a result that comes after the end (:mod:`activities.results_after_end`):
        fulfil the open order it answers, and raise a care-team task where it calls for one."""
        try:
            event = parse_event(request.event)
        except ContractError as exc:  # validated on receipt: bad data here fails at once, never retried
            raise ApplicationError(f"event: {exc}", non_retryable=True) from None
        done = record_result_after_end(
            self.book, workflow_id=request.workflow_id, patient_id=request.patient_id, event=event, day=request.day,
            result_key=request.result_key, status=request.status, enrolled_level=request.enrolled_level,
            enrolled_height_loss=request.enrolled_height_loss, red_flags=request.red_flags)
        activity.logger.info("result after the end recorded", extra={"fulfilled": len(done.fulfilled),
                                                                     "escalated": bool(done.escalation)})
        return done.fulfilled

    @activity.defn(name="alert_refused_task")
    def alert_refused_task(self, request: RefusalRequest) -> OrderReceipt:
        """One urgent care-team task per refused order (idempotent), pointing at the order."""
        order, created = place_refusal_alert(self.book, request)
        activity.logger.info("refused order alerted", extra={"created": created})
        return OrderReceipt(order_id=order.id, status=order.status, created=created)

    def all(self) -> list:
        """The activity callables, for the worker."""
        return [self.place_order, self.place_orders, self.cancel_open_orders, self.record_result,
                self.escalate_overdue_result, self.escalate_overdue_result_after_end, self.record_result_after_end,
                self.alert_refused_task]
