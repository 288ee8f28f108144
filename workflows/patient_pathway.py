"""The patient pathway workflow: one per patient, enrollment to discharge.

A thin durable shell around :mod:`pathway.decisions`: it keeps the facts, sleeps until the next
due step, receives events (signals, or an update for a synchronous answer), asks the decisions
what to do, and writes each decision step's orders with one order-book activity. Deterministic
by construction: ``workflow.now()`` only, no I/O, no randomness. One alarm is armed at a time, for
the earliest due step; a later one that is no longer the earliest is cancelled before it is due
(never in the instant it rings: the time-skipping server cannot take that), an earlier stale one
rings and re-arms.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.after_completion import AfterCompletionActivities
    from activities.orders import (
        BatchReceipt,
        CancelRequest,
        OrderActivities,
        OrderBatch,
        OrderRequest,
        OverdueRequest,
        RefusalRequest,
        ResultAfterEndRequest,
        ResultRequest,
    )
    from pathway.contract import EVENT_TYPES, Action, Event, PathwayStatus
    from pathway.decisions import REVISION, Due, decide, escalation_state, next_due, next_scheduled_step, phase
    from pathway.facts import PatientFacts, latest_pain, pause_state
    from pathway.intake import Admission, InboxItem, admit, clinical_rejection, day_of, observed_too_early
    from pathway.releases import UnknownGuideline
    from pathway.results import (
        REFUSAL_CITATION,
        RESULT_EVENT_TYPES,
        Overdue,
        observe,
        open_orders,
        overdue_checks,
        overdue_note_id,
        overdue_orders,
        refusal_alert,
        refusal_note_id,
        result_due_day,
        take,
        watched_after_completion,
    )
    from workflows import search_attributes as sa
    from workflows.activity_calls import SETTLE, call_activity
    from workflows.metrics import PathwayMetrics, RejectionReason
    from workflows.models import (
        MAX_REFUSED_IDS_KEPT,
        MAX_REJECTIONS_KEPT,
        CarriedState,
        EventReceipt,
        LatestPain,
        PathwayInput,
        PathwayResult,
        PathwayState,
        Rejection,
        TaskRefusal,
        TimelineEntry,
        TimelineKind,
    )
    from workflows.open_orders_watch import OpenOrdersWatchInput, WatchedResult

# A signal whose body the payload converter cannot read (malformed JSON, nesting too deep, a lone surrogate):
# the SDK would drop it with a log line only; read in the handler, it is refused like any malformed event.
UNREADABLE = "body: not JSON the pathway can read (malformed, or nested too deeply)"
MAX_REASON = 500  # characters of a refusal's reason kept (the sender's error lines are capped too)
# vcf-1.1: overdue imaging results escalate to the care team (adds timers and activities).
OVERDUE_RESULTS_PATCH = "overdue-result-escalation"
# Performance release: one timer for the earliest due step instead of one per due instant.
ONE_ALARM_PATCH = "one-alarm"
# Performance release: a decision step's result, orders and escalations in one activity call.
BATCHED_ORDERS_PATCH = "batched-orders"
# Safety fixes (pathway.revision.REVISION 2): decisions that may place fewer or other orders than before.
DECISIONS_REVISION_PATCH = "decisions-revision-2"
# Late evidence and one task per need (pathway.revision.REVISION 3): what it lists may order less or refuse more.
DECISIONS_REVISION_3_PATCH = "decisions-revision-3"
# Steps scheduled for an instant wait until it has passed (pathway.revision.REVISION 4): events observed at
# that instant come first, which may hold, order or end at other times than before.
DECISIONS_REVISION_4_PATCH = "decisions-revision-4"
# Radiographs and screenings due together are one order, paused days do not count in a follow-up gap, a
# criterion found after the review refers only by its hold limit (pathway.revision.REVISION 5).
DECISIONS_REVISION_5_PATCH = "decisions-revision-5"
# A withdrawal stops nothing, a result is matched to its order as it arrives, the enrollment's orders go out
# before the first event, a result still queued at the end fulfils its order; the rest in pathway/revision.py.
DECISIONS_REVISION_6_PATCH = "decisions-revision-6"
# A film observed at the instant an order it answers is placed, or while a pause held a scheduled one, is that
# order's result, kept for it even while an older order is open (pathway/revision.py).
DECISIONS_REVISION_7_PATCH = "decisions-revision-7"
# A review held for its evidence, then paused, keeps its evidence window on resume; the suggested procedure
# and a flare at the edge of the screening window change too (pathway/revision.py).
DECISIONS_REVISION_8_PATCH = "decisions-revision-8"
# A flare orders its screening also while an earlier one waits for its film; a pain report from before enrollment,
# or a result from before the fracture, is refused (pathway/revision.py).
DECISIONS_REVISION_9_PATCH = "decisions-revision-9"
# An event refused when applied leaves its event id free (before: a re-send was answered as a duplicate).
FREE_REFUSED_IDS_PATCH = "free-refused-event-ids"
# Results still awaited when the pathway completes are watched after the end (an activity starts the watch).
WATCH_OPEN_ORDERS_PATCH = "watch-open-orders-after-completion"


@dataclass
class _Alarm:
    at: datetime
    task: asyncio.Task[None]


@dataclass(frozen=True)
class _Snapshot:
    day: float
    phase: str
    paused: bool
    review: float | None
    escalation: str
    latest_pain: LatestPain
    upcoming: list[Due]


@workflow.defn(name="PatientPathway")
class PatientPathwayWorkflow:
    """One patient's VCF care pathway."""

    @workflow.init
    def __init__(self, input: PathwayInput) -> None:
        self._guideline_error: str | None = None
        try:
            self._defn = input.resolved()
        except UnknownGuideline as err:
            self._guideline_error = str(err)  # run() fails the start with it, before anything is decided
        self._options = input.options
        self._s = input.carried or CarriedState(enrolled_at=workflow.now(),
                                                facts=PatientFacts(enrollment=input.enrollment))
        self._receipts: dict[int, EventReceipt] = {}
        self._awaited: set[int] = set()
        self._alarm_rang = False
        self._ending = False  # the ended pathway records the results still queued (revision 6)
        self._alarms: dict[float, asyncio.Task[None]] = {}  # before ONE_ALARM_PATCH: due day -> its alarm
        self._armed: _Alarm | None = None  # the one outstanding alarm (ONE_ALARM_PATCH)
        self._published: tuple[str, float | None, str] | None = None
        # Metrics only (no command): when each queued event arrived, and the one being applied.
        self._metrics = PathwayMetrics(workflow.metric_meter(), EVENT_TYPES)
        self._arrived: dict[int, datetime] = {}
        self._applying_since: datetime | None = None
        self._revision: int | None = None  # the decisions' revision of this run (see _decisions_revision)

    # --- Run loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: PathwayInput) -> PathwayResult:
        """Carry the patient from enrollment to completion, withdrawal or exit."""
        if self._guideline_error is not None:
            raise ApplicationError(self._guideline_error, type="UnknownGuideline", non_retryable=True)
        if input.carried is None:
            e = input.enrollment
            self._record("enrolled", f"Enrolled: {e.fracture_level}, height loss {e.height_loss_pct:g}%, "
                         f"pain NRS {e.pain_nrs}; guideline {self._defn.version}", e.model_dump(mode="json"))
            workflow.logger.info("pathway started", extra={"guideline_version": self._defn.version})
        while True:
            await self._advance()
            self._publish()
            if self._s.status != "running":
                break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() or bool(self._s.inbox))
                if not self._s.inbox:
                    workflow.logger.info("continuing as new",
                                         extra={"history_length": workflow.info().get_current_history_length()})
                    workflow.continue_as_new(PathwayInput.keeping(self._defn, enrollment=input.enrollment,
                                                                  options=self._options, carried=self._s))
                continue
            self._arm_alarms()
            await workflow.wait_condition(lambda: bool(self._s.inbox) or bool(self._s.refusals) or self._alarm_rang)
        watched = watched_after_completion(self._defn, self._s.facts, self._decisions_revision()) \
            if self._s.status == "completed" else []
        if watched and workflow.patched(WATCH_OPEN_ORDERS_PATCH):
            await self._watch_after_completion(watched)
        self._record("ended", f"Pathway {self._s.status}", {"status": self._s.status})
        workflow.logger.info("pathway ended", extra={"status": self._s.status})
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PathwayResult(status=self._s.status, day=round(self._day(), 3), actions=self._s.actions,
                             rejected=self._s.rejected, rejected_dropped=self._s.rejected_dropped,
                             enrolled_at=self._s.enrolled_at,
                             guideline_version=self._defn.version, latest_pain=self._snapshot().latest_pain,
                             notes=self._s.notes())

    async def _advance(self) -> None:
        """Apply queued events in order, then whatever the clock has made due."""
        self._alarm_rang = False
        while self._s.refusals and self._s.status == "running":
            await self._act_on_refusal(self._s.refusals.pop(0))
        while True:
            while self._s.inbox and self._s.status == "running":
                await self._apply(self._s.inbox.pop(0))
            if self._s.status == "running":
                await self._decide_and_act()
            if self._s.status != "running":
                # From revision 6 a result still queued, or arriving while one is recorded, fulfils its order.
                self._ending = bool(self._s.inbox) and self._decisions_revision() >= 6
                while self._s.inbox:
                    item = self._s.inbox.pop(0)
                    reason = f"the pathway has ended ({self._s.status})"
                    early = self._observed_too_early(item) if self._decisions_revision() >= 9 else None
                    if early is not None:
                        reason += f"; {early}"
                    elif item.event.get("type") in RESULT_EVENT_TYPES and self._ending:
                        reason += await self._result_after_end(item)
                    self._settle(item.seq, self._reject(reason, item.event, cause="pathway_ended"))
                self._ending = False
                self._arrived.clear()
                return
            if not self._s.inbox:  # events that arrived while the last orders were written go round again
                return

    async def _result_after_end(self, item: InboxItem) -> str:
        """A result accepted while the pathway ran, still in its inbox when it ended: it fulfils its open
        order as a result sent after the end does (decisions revision 6); what it did, for the refusal."""
        enrollment = self._s.facts.enrollment
        fulfilled = await call_activity(OrderActivities.record_result_after_end, ResultAfterEndRequest(
            workflow_id=workflow.info().workflow_id, patient_id=enrollment.id, event=item.event, day=item.day,
            # Keyed as the API keys a result sent after the end (its event id): sent again, it is the same result.
            result_key=str(item.event.get("event_id") or f"pathway-event-{item.seq}"), status=self._s.status,
            enrolled_level=enrollment.fracture_level, enrolled_height_loss=enrollment.height_loss_pct,
            red_flags=list(enrollment.red_flags)), str(item.event.get("type")))
        return (f"; as a result after the end it fulfilled its open order {', '.join(fulfilled)}" if fulfilled
                else f"; no open {item.event.get('type')} order waits for this result")

    async def _apply(self, item: InboxItem) -> None:
        event, day = item.parsed(), item.day
        arrived = self._arrived.pop(item.seq, None)  # None for events carried over a continue-as-new
        reason = clinical_rejection(self._defn, self._s.facts, event, day, self._decisions_revision(),
                                    self._observed_day(event))
        if reason:
            self._settle(item.seq, self._reject(reason, item.event, cause="clinical_conflict"))
            if event.event_id is not None and workflow.patched(FREE_REFUSED_IDS_PATCH):
                self._s.seen_event_ids.remove(event.event_id)  # refused: sent again, it is judged again
                self._s.refused_event_ids = [*self._s.refused_event_ids, event.event_id][-MAX_REFUSED_IDS_KEPT:]
            return
        if self._decisions_revision() >= 6 and not self._s.facts.taken:
            # An event in the very first activation: the enrollment's orders go out first, so that a result
            # sent with the enrollment (the MRI already taken) fulfils the order it answers.
            await self._decide_and_act()
        observation = observe(self._s.facts, day, event, self._decisions_revision(), self._defn)
        self._record("event", _describe(event), event.model_dump(mode="json", exclude_none=True), day=day)
        result = ResultRequest(workflow_id=workflow.info().workflow_id, event_type=event.type, day=day,
                               result_key=_result_key(item.seq, event), order_action_id=observation.answers) \
            if event.type in RESULT_EVENT_TYPES else None
        if result is not None and not workflow.patched(BATCHED_ORDERS_PATCH):
            await call_activity(OrderActivities.record_result, result, event.type)
            result = None
        self._applying_since = arrived
        try:
            actions = await self._decide_and_act(result)
        finally:
            self._applying_since = None
        self._settle(item.seq, EventReceipt(accepted=True, event_id=event.event_id, day=day, actions=actions))

    async def _decide_and_act(self, result: ResultRequest | None = None) -> list[Action]:
        """Decide at this instant and write what was decided (with ``result``, the result that
        came in, when the step's writes are batched)."""
        decision = decide(self._defn, self._s.facts, self._day(), self._decisions_revision())
        for note in decision.notes:
            self._s.facts.noted.append(note.id)
            self._record("note", note.text, {"id": note.id, "citation": note.citation}, day=note.day)
        if workflow.patched(BATCHED_ORDERS_PATCH):
            await self._act_in_one_step(decision.actions, decision.status, result)
            return decision.actions
        for action in decision.actions:
            await self._place(action)
        if decision.status != "running":
            self._s.status = decision.status
        elif workflow.patched(OVERDUE_RESULTS_PATCH):
            for overdue in overdue_orders(self._defn, self._s.facts, self._day(), self._decisions_revision()):
                await self._escalate_overdue(overdue)
        return decision.actions

    def _decisions_revision(self) -> int:
        """The decisions' revision this run decides by (pathway.revision.REVISION): a run that started
        before a revision keeps the one it started with, until its next continue-as-new."""
        if self._revision is None:
            self._revision = 9 if workflow.patched(DECISIONS_REVISION_9_PATCH) else \
                8 if workflow.patched(DECISIONS_REVISION_8_PATCH) else \
                7 if workflow.patched(DECISIONS_REVISION_7_PATCH) else \
                6 if workflow.patched(DECISIONS_REVISION_6_PATCH) else \
                5 if workflow.patched(DECISIONS_REVISION_5_PATCH) else \
                4 if workflow.patched(DECISIONS_REVISION_4_PATCH) else \
                3 if workflow.patched(DECISIONS_REVISION_3_PATCH) else \
                2 if workflow.patched(DECISIONS_REVISION_PATCH) else 1
        return self._revision

    async def _act_in_one_step(self, actions: list[Action], status: PathwayStatus,
                               result: ResultRequest | None) -> None:
        """One activity call for the step: the result, the orders, the results they adopted (revision 7),
        then the overdue escalations (the same writes, in the same order, as one call each before
        BATCHED_ORDERS_PATCH)."""
        wf_id = workflow.info().workflow_id
        batch = OrderBatch(workflow_id=wf_id, result=result, orders=[self._order_request(a) for a in actions])
        adopted = take(self._s.facts, actions, self._day(), self._decisions_revision())  # the actions, and their films
        batch.adopted = [ResultRequest(workflow_id=wf_id, event_type=film.event.type, day=film.day,
                                       result_key=f"adopted-{film.answers}", order_action_id=film.answers)
                         for film in adopted]
        escalations: list[tuple[str, OverdueRequest]] = []
        if status == "running" and workflow.patched(OVERDUE_RESULTS_PATCH):
            for overdue in overdue_orders(self._defn, self._s.facts, self._day(), self._decisions_revision()):
                note_id, request = self._overdue_request(overdue)
                if note_id not in self._s.facts.noted:
                    self._s.facts.noted.append(note_id)
                    self._metrics.result_overdue(overdue.order.kind)
                    escalations.append((note_id, request))
            batch.overdue = [request for _, request in escalations]
        receipt: BatchReceipt | None = None
        if batch.result or batch.orders or batch.overdue:
            receipt = await call_activity(OrderActivities.place_orders, batch, "order batch")
        for action in actions:
            self._ordered(action, receipt.placed.get(action.id) if receipt else None)
            self._taken(action)
        for note_id, request in escalations:
            self._record("note", request.rationale, {"id": note_id, "citation": request.citation}, day=request.day)
        if status != "running":
            self._s.status = status

    def _overdue_request(self, overdue: Overdue, due_day: float | None = None) -> tuple[str, OverdueRequest]:
        """The escalation of an overdue result: now, or (``due_day``) by the watch after completion."""
        order, rule = overdue.order, overdue.rule
        ended = f" (the pathway completed on day {self._day():.0f})" if due_day is not None else ""
        text = (f"No result for {order.kind} placed on day {order.day:g}"
                + (f" (urgent since day {overdue.since:g})" if overdue.since != order.day else "")
                + f": more than {rule.value:g} days{ended}. Escalated to the care team.")
        return overdue_note_id(order.action_id), OverdueRequest(
            workflow_id=workflow.info().workflow_id, patient_id=self._s.facts.enrollment.id,
            order_action_id=order.action_id, order_kind=order.kind, order_day=order.day,
            day=round(self._day() if due_day is None else due_day, 3), rationale=text, citation=rule.cite())

    async def _watch_after_completion(self, watched: list[Overdue]) -> None:
        """Hand the results still missing at completion to a watch that outlives the pathway
        (:mod:`workflows.open_orders_watch`), and note what it waits for."""
        due = [(result_due_day(overdue), overdue) for overdue in watched]
        listing = "; ".join(f"{o.order.action_id} (ordered on day {o.order.day:g}, overdue after day {day:.0f})"
                            for day, o in due)
        watching = {overdue.order.action_id for overdue in watched}
        escalated = [o for o in open_orders(self._s.facts) if o.action_id not in watching]
        self._record("note", f"Still without a result at completion: {listing}. The care team is told of each "
                     "result that has not come by then." + (
                         " Also without a result, escalated to the care team already: "
                         + "; ".join(f"{o.action_id} (ordered on day {o.day:g})" for o in escalated) + "."
                         if escalated else ""), {"id": "results_awaited_at_completion",
                                                           "citation": watched[0].rule.cite()})
        # A local activity: a short call to the server, recorded as one marker (the history stays lean).
        await call_activity(AfterCompletionActivities.start_open_orders_watch, OpenOrdersWatchInput(
            enrolled_at=self._s.enrolled_at, ui_metadata=self._options.ui_metadata,
            watched=[WatchedResult(due_day=day, escalation=self._overdue_request(o, day)[1]) for day, o in due]),
            "open orders watch", local=True)

    async def _escalate_overdue(self, overdue: Overdue) -> None:
        """One overdue result, one activity call (pathways started before BATCHED_ORDERS_PATCH)."""
        note_id, request = self._overdue_request(overdue)
        if note_id in self._s.facts.noted:
            return
        self._s.facts.noted.append(note_id)
        self._metrics.result_overdue(overdue.order.kind)
        self._record("note", request.rationale, {"id": note_id, "citation": request.citation}, day=request.day)
        await call_activity(OrderActivities.escalate_overdue_result, request, overdue.order.kind)

    async def _act_on_refusal(self, refusal: TaskRefusal) -> None:
        """An order's task was rejected or failed: note it once (its overdue clock stops) and, if
        the pure core says so, alert the care team with one task."""
        note_id = refusal_note_id(refusal.action_id)
        if note_id in self._s.facts.noted or refusal.action_id not in self._s.facts.taken:
            return  # once per order; a care-team task's own (an escalation, an alert) is no order of the pathway's
        # From revision 9 the refusal must name the order as it went out: its kind is read from the order, never
        # taken from the sender (a wrong one could say no alert was due).
        mismatch = self._refusal_mismatch(refusal) if self._decisions_revision() >= 9 else None
        if mismatch is not None:
            self._reject(f"task_refused: {mismatch}", refusal.model_dump(), "task_refused", cause="invalid")
            return
        day = round(self._day(), 3)
        alert = refusal_alert(refusal.kind, refusal.status, refusal.reason, day, self._order_title(refusal.action_id))
        text = alert.rationale if alert else f"Order {refusal.kind} was {refusal.status} by its performer."
        self._s.facts.noted.append(note_id)
        self._record("note", text, {"id": note_id, "citation": alert.citation if alert else REFUSAL_CITATION}, day=day)
        if alert is not None:
            await call_activity(OrderActivities.alert_refused_task, RefusalRequest(
                workflow_id=workflow.info().workflow_id, patient_id=self._s.facts.enrollment.id,
                order_id=refusal.order_id, order_action_id=refusal.action_id, task_status=refusal.status, day=day,
                title=alert.title, rationale=alert.rationale, citation=alert.citation), refusal.kind)

    def _refusal_mismatch(self, refusal: TaskRefusal) -> str | None:
        """Why a refusal of one of the pathway's actions does not name its order as it went out, or None."""
        action = next((a for a in self._s.actions if a.id == refusal.action_id), None)
        if action is None:
            return None
        if self._s.orders.get(action.id) != refusal.order_id:
            return "order_id: not the order placed for action_id"
        if action.kind != refusal.kind:
            return f"kind: the order placed for action_id is {action.kind}"
        return None

    def _order_title(self, action_id: str) -> str:
        """An order's name as it went out: the region of its level where the version is level-aware."""
        action = next((a for a in self._s.actions if a.id == action_id), None)
        if action is None or action.kind not in self._defn.actions:
            return ""
        return self._defn.order_for(action.kind, action.details.get("level"))[0]

    def _order_request(self, action: Action) -> OrderRequest:
        spec = self._defn.actions[action.kind]
        title, codes = self._defn.order_for(action.kind, action.details.get("level"))
        return OrderRequest(workflow_id=workflow.info().workflow_id, patient_id=self._s.facts.enrollment.id,
                            action=action, title=title, resource=spec.resource, codes=codes)

    def _ordered(self, action: Action, order_id: str | None) -> None:
        """Record the order written for ``action`` (and, for an event's orders, how long it took)."""
        if order_id is None:
            action.details["order_error"] = "the order could not be written; see the worker log"
            return
        self._s.orders[action.id] = order_id
        if self._applying_since is not None:
            self._metrics.order_written_after(workflow.now() - self._applying_since, action.kind)

    def _taken(self, action: Action) -> None:
        self._s.actions.append(action)
        self._metrics.action_taken(action.kind)
        self._record("action", f"{action.kind}: {action.rationale}", {"id": action.id, "kind": action.kind},
                     day=action.day)
        workflow.logger.info("action taken", extra={"action_kind": action.kind, "action_id": action.id})

    async def _place(self, action: Action) -> None:
        """One order, one activity call (pathways started before BATCHED_ORDERS_PATCH)."""
        self._s.facts.taken[action.id] = action.day
        receipt = await call_activity(OrderActivities.place_order, self._order_request(action), action.kind)
        self._ordered(action, receipt.order_id if receipt is not None else None)
        self._taken(action)
        if action.details.get("cancels"):
            await call_activity(OrderActivities.cancel_open_orders, CancelRequest(
                workflow_id=workflow.info().workflow_id, kinds=action.details["cancels"],
                reason=f"{action.kind} on day {action.day:g}"), action.kind)

    # --- Timers --------------------------------------------------------------------------------

    def _arm_alarms(self) -> None:
        dues: dict[float, list[str]] = {}
        for due in next_due(self._defn, self._s.facts, self._day(), self._decisions_revision()):
            dues.setdefault(due.day, []).append(due.label)
        if workflow.patched(OVERDUE_RESULTS_PATCH):
            for day in overdue_checks(self._defn, self._s.facts, self._day(), self._decisions_revision()):
                dues.setdefault(day, []).append("result overdue check")
        if workflow.patched(ONE_ALARM_PATCH):
            self._arm_earliest(dues)
            return
        for day, labels in dues.items():
            if day not in self._alarms:
                self._alarms[day] = asyncio.create_task(self._alarm(Due(day, " + ".join(dict.fromkeys(labels)))))

    def _arm_earliest(self, dues: dict[float, list[str]]) -> None:
        """Keep one alarm, for the earliest due step. A later alarm is cancelled only while its
        instant is still ahead (cancelling one that rang in this same task hangs the time-skipping
        server); an earlier, stale one is left to ring and re-arm."""
        current = self._armed
        if current is not None and current.task.done():
            current = self._armed = None
        if not dues:
            return
        day = min(dues)
        at = self._s.enrolled_at + timedelta(days=day) + SETTLE
        if current is not None:
            if current.at <= at or current.at <= workflow.now():
                return  # the right one, or an earlier stale one that will ring and re-arm
            current.task.cancel()
        self._armed = _Alarm(at, asyncio.create_task(self._alarm(Due(day, " + ".join(dict.fromkeys(dues[day]))))))

    async def _alarm(self, due: Due) -> None:
        delay = self._s.enrolled_at + timedelta(days=due.day) + SETTLE - workflow.now()
        with contextlib.suppress(asyncio.CancelledError):  # superseded by an earlier alarm
            await workflow.sleep(max(delay, timedelta(milliseconds=1)),
                                 summary=due.label if self._options.ui_metadata else None)
            self._alarm_rang = True

    # --- Events in -----------------------------------------------------------------------------

    def _receive(self, payload: Any, event_type: str | None = None) -> int | EventReceipt:
        """Admit and queue an event; return its sequence number, or the rejection."""
        if isinstance(payload, RawValue):  # a signal's: read here, so that a body no JSON reader takes is refused
            try:
                payload = workflow.payload_converter().from_payload(payload.payload, cast(type, Any))
            except Exception:  # noqa: BLE001 - whatever the converter raises, the sender's body is at fault
                return self._reject(UNREADABLE, {}, event_type, cause="invalid")
        admitted = self._admit(payload, event_type)
        event = admitted.event
        if admitted.reason is not None or event is None:
            cause: RejectionReason = "invalid" if event is None else \
                "pathway_ended" if self._s.status != "running" else "in_future"
            return self._reject(admitted.reason or "body: not an event", payload, event_type, cause=cause)
        if admitted.duplicate:
            workflow.logger.info("duplicate event ignored", extra={"event_type": event.type})
            return EventReceipt(accepted=True, event_id=event.event_id, day=admitted.day, duplicate=True)
        if event.event_id is not None:
            self._s.seen_event_ids.append(event.event_id)
            if event.event_id in self._s.refused_event_ids:  # refused before, judged again now
                self._s.refused_event_ids.remove(event.event_id)
        self._s.event_seq += 1
        self._s.inbox.append(InboxItem(seq=self._s.event_seq, day=admitted.day, event=event.model_dump(mode="json")))
        self._arrived[self._s.event_seq] = workflow.now()
        return self._s.event_seq

    def _admit(self, payload: Any, event_type: str | None = None) -> Admission:
        # A result arriving while the ended pathway still records queued results is queued with them.
        late_result = self._ending and isinstance(payload, dict) \
            and (event_type or payload.get("type")) in RESULT_EVENT_TYPES
        return admit(payload, status="running" if late_result else self._s.status,
                     seen_event_ids=self._s.seen_event_ids, enrolled_at=self._s.enrolled_at, now=workflow.now(),
                     event_type=event_type)

    def _reject(self, reason: str, payload: Any, event_type: str | None = None, *,
                cause: RejectionReason) -> EventReceipt:
        body = payload if isinstance(payload, dict) else {}
        event_type = event_type or (str(body.get("type"))[:40] if body.get("type") else None)
        self._metrics.event_rejected(cause, event_type)
        event_id = str(body["event_id"])[:128] if body.get("event_id") is not None else None
        reason = reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"
        rejection = Rejection(day=round(self._day(), 3), reason=reason, event_type=event_type, event_id=event_id)
        self._s.rejected.append(rejection)
        self._record("rejected", f"Rejected {event_type or 'event'}: {reason}", rejection.model_dump(mode="json"))
        if len(self._s.rejected) > MAX_REJECTIONS_KEPT:  # the oldest kept refusal goes, from both records
            self._s.rejected.pop(0)
            self._s.rejected_dropped += 1
            oldest = next(i for i, t in enumerate(self._s.timeline) if t.entry == "rejected")
            del self._s.timeline[oldest]
        # A type the contract does not know is the sender's text: logged as "unknown" (it may hold anything).
        workflow.logger.warning("event rejected", extra={"event_type": event_type if event_type in EVENT_TYPES
                                                         else "unknown"})
        return EventReceipt(accepted=False, event_id=event_id, day=rejection.day, reason=reason)

    def _settle(self, seq: int, receipt: EventReceipt) -> None:
        if seq in self._awaited:
            self._receipts[seq] = receipt

    @workflow.signal
    def event(self, payload: RawValue) -> None:
        """Any contract event; its ``type`` field says which."""
        self._receive(payload)

    @workflow.signal
    def pain(self, payload: RawValue) -> None:
        """A pain score: ``{"nrs": 0-10}``."""
        self._receive(payload, "pain")

    @workflow.signal
    def mri(self, payload: RawValue) -> None:
        """An MRI result: ``{"etiology": ...}``."""
        self._receive(payload, "mri")

    @workflow.signal
    def radiograph(self, payload: RawValue) -> None:
        """A radiograph: ``{"height_loss_pct": ..., "kyphosis_deg"?: ..., "new_fracture_level"?: ...}``."""
        self._receive(payload, "radiograph")

    @workflow.signal
    def dxa(self, payload: RawValue) -> None:
        """A DXA result: ``{"t_score": ...}``."""
        self._receive(payload, "dxa")

    @workflow.signal
    def mobility(self, payload: RawValue) -> None:
        """Mobility: ``{"bed_bound": true|false}``."""
        self._receive(payload, "mobility")

    @workflow.signal
    def pulmonary(self, payload: RawValue) -> None:
        """Pulmonary function: ``{"dysfunction": true|false}``."""
        self._receive(payload, "pulmonary")

    @workflow.signal
    def neuro(self, payload: RawValue) -> None:
        """Neurological status: ``{"deficit": true|false}``."""
        self._receive(payload, "neuro")

    @workflow.signal
    def side_effect(self, payload: RawValue) -> None:
        """A side effect: ``{"drug": ..., "effect": ...}``."""
        self._receive(payload, "side_effect")

    @workflow.signal
    def clinician(self, payload: RawValue) -> None:
        """A clinician decision: ``{"decision": ..., "reason": ..., "author": ...}``."""
        self._receive(payload, "clinician")

    @workflow.signal
    def task_refused(self, payload: Any) -> None:
        """An order's task was rejected or failed by its performer (sent by the API's Task update);
        a malformed payload is recorded as rejected, never fails the workflow."""
        try:
            refusal = TaskRefusal.model_validate(payload)
        except ValidationError:
            self._reject("task_refused: expected order_id, action_id, kind and status rejected or failed",
                         payload, "task_refused", cause="invalid")
            return
        if self._s.status == "running" and refusal_note_id(refusal.action_id) not in self._s.facts.noted \
                and refusal not in self._s.refusals:
            self._s.refusals.append(refusal)

    @workflow.update
    async def submit_event(self, payload: Any) -> EventReceipt:
        """Apply one event and answer with what it caused (synchronous accept/reject)."""
        queued = self._receive(payload)
        if isinstance(queued, EventReceipt):
            return queued
        self._awaited.add(queued)
        await workflow.wait_condition(lambda: queued in self._receipts)
        self._awaited.discard(queued)
        return self._receipts.pop(queued)

    @submit_event.validator
    def _validate_event(self, payload: Any) -> None:
        if self._s.status != "running":
            raise ApplicationError(f"the pathway has ended ({self._s.status})", type="PathwayEnded")
        admitted = self._admit(payload)
        reason = admitted.reason
        if reason is None and admitted.event is not None and not admitted.duplicate:
            # A validator adds no command: before this run's first decision, judge by the current revision
            # (the event is judged again when it is applied).
            reason = clinical_rejection(self._defn, self._s.facts, admitted.event, admitted.day,
                                        self._revision or REVISION, self._observed_day(admitted.event))
        if reason:
            raise ApplicationError(reason, type="InvalidEvent")

    # --- Queries and visibility ----------------------------------------------------------------

    @workflow.query
    def state(self) -> PathwayState:
        """Where the patient is: phase, day, latest pain, next review, actions, orders."""
        now = self._snapshot()
        return PathwayState(
            patient_id=self._s.facts.enrollment.id, workflow_id=workflow.info().workflow_id,
            status=self._s.status, phase=now.phase, paused=now.paused, day=round(now.day, 3),
            enrolled_at=self._s.enrolled_at, guideline_version=self._defn.version,
            fracture_level=self._s.facts.enrollment.fracture_level, latest_pain=now.latest_pain,
            escalation_state=now.escalation, next_review_day=now.review, next_review_at=self._at(now.review),
            next_step=now.upcoming[0].label if now.upcoming else None,
            actions=self._s.actions, orders=self._s.orders, rejected=self._s.rejected,
            rejected_dropped=self._s.rejected_dropped, notes=self._s.notes(),
            history_length=workflow.info().get_current_history_length())

    @workflow.query
    def event_refused(self, event_id: str) -> bool:
        """Whether the running pathway refused an event with this id and holds none now: sent again, it
        is judged again (the API's registry still holds the id, and would answer a duplicate)."""
        return self._s.status == "running" and event_id not in self._s.seen_event_ids and (
            event_id in self._s.refused_event_ids or any(r.event_id == event_id for r in self._s.rejected))

    @workflow.query
    def actions(self) -> list[Action]:
        """Every action taken, in order."""
        return self._s.actions

    @workflow.query
    def timeline(self) -> list[TimelineEntry]:
        """Events, actions, decision notes and rejections, in the order they happened."""
        return self._s.timeline

    def _publish(self) -> None:
        """Keep the search attributes and the UI's current details up to date."""
        now = self._snapshot()
        shown_phase = "paused" if now.paused and self._s.status == "running" else now.phase
        published = (shown_phase, now.review, now.escalation)
        if published == self._published:
            return
        self._published = published
        if self._options.search_attributes:
            workflow.upsert_search_attributes([
                sa.PATHWAY_PHASE.value_set(shown_phase),
                sa.NEXT_REVIEW_AT.value_set(self._s.enrolled_at + timedelta(days=now.review)) if now.review is not None
                else sa.NEXT_REVIEW_AT.value_unset(),
                sa.ESCALATION_STATE.value_set(now.escalation),
                sa.GUIDELINE_VERSION.value_set(self._defn.version),
                sa.FRACTURE_LEVEL.value_set(self._s.facts.enrollment.fracture_level),
            ])
        if self._options.ui_metadata:
            step = now.upcoming[0] if now.upcoming else None
            workflow.set_current_details(
                f"**Phase:** {shown_phase}  \n**Day:** {now.day:.1f}  \n"
                f"**Latest pain:** NRS {now.latest_pain.nrs} (day {now.latest_pain.day:g})  \n"
                f"**Escalation:** {now.escalation}  \n**Next step:** "
                + (f"{step.label} (day {step.day:.0f})" if step else "none"))

    def _snapshot(self) -> _Snapshot:
        """The derived views that the state query and the UI both show."""
        day = self._day()
        running = self._s.status == "running"
        pain_day, nrs = latest_pain(self._s.facts)
        return _Snapshot(
            day=day, phase=phase(self._defn, self._s.status, day), paused=pause_state(self._s.facts).paused,
            review=next_scheduled_step(self._defn, day) if running else None,
            escalation=escalation_state(self._s.facts, self._revision or REVISION),
            latest_pain=LatestPain(nrs=nrs, day=round(pain_day, 3)),
            upcoming=next_due(self._defn, self._s.facts, day, self._revision or REVISION) if running else [])

    # --- Helpers -------------------------------------------------------------------------------

    def _day(self) -> float:
        return day_of(workflow.now(), self._s.enrolled_at)

    def _observed_too_early(self, item: InboxItem) -> str | None:
        """Why a queued event was observed too early to count (:func:`pathway.intake.observed_too_early`)."""
        event = item.parsed()
        observed = self._observed_day(event)
        return None if observed is None else \
            observed_too_early(event, observed, self._s.facts.enrollment.onset_days_before_enrollment)

    def _observed_day(self, event: Event) -> float | None:
        """The day an event's ``observed_at`` names, before enrollment too (None without one), to tell what
        was observed before the patient was enrolled: counted from when the pathway was started, if its
        first task ran later (no worker then), as the API counts it."""
        if event.observed_at is None:
            return None
        return day_of(event.observed_at, min(self._s.enrolled_at, workflow.info().start_time))

    def _at(self, day: float | None) -> datetime | None:
        return self._s.enrolled_at + timedelta(days=day) if day is not None else None

    def _record(self, entry: TimelineKind, summary: str, data: dict[str, Any], day: float | None = None) -> None:
        self._s.timeline.append(TimelineEntry(day=round(self._day() if day is None else day, 3), at=workflow.now(),
                                              entry=entry, summary=summary, data=data))


def _result_key(seq: int, event: Event) -> str:
    """How the order book names the result that fulfilled an order: unique in the pathway (its arrival
    number), and traceable to what the sender sent (its event id, e.g. a DiagnosticReport's)."""
    return f"event-{seq}" + (f": {event.event_id}" if event.event_id else "")


def _describe(event: Event) -> str:
    """A one-line timeline summary of an event."""
    fields = event.model_dump(exclude={"type", "event_id", "observed_at"}, exclude_none=True)
    return f"{event.type}: " + ", ".join(f"{k}={v}" for k, v in fields.items())
