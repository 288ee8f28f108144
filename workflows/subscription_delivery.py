"""One workflow per rest-hook subscription: push each matching order change, in order, once.

It keeps a cursor into the order book's outbox (``order_changes``) and the last event number.
A long-polling activity hands it the matching changes; each is delivered by an activity that
Temporal retries with backoff until the failure window is spent. Then the subscription goes to
``error`` and the workflow waits, cursor kept, until the API re-activates it (``set_status``
signal): delivery resumes with the change that failed, under the same event number. ``off``
holds delivery the same way. Its status is a search attribute (``SubscriptionStatus``: no PHI,
the workflow id names the subscription only). It continues as new from time to time, carrying
its cursor, so an idle subscription's history stays short.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import ChangesRequest, DeliverRequest, DeliveryActivities, StatusRequest
    from activities.subscriptions import SubscriptionStatus
    from workflows import search_attributes as sa

SUBSCRIPTION_ID_PREFIX = "vcf-subscription-"
LOOPS_PER_RUN = 200  # polls before continuing as new (each adds a handful of history events)
STATUS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


def subscription_workflow_id(subscription_id: str) -> str:
    """The workflow id of a subscription's delivery (its random id only: no PHI)."""
    return SUBSCRIPTION_ID_PREFIX + subscription_id


class DeliveryInput(BaseModel):
    """Which subscription, where its delivery stands, and how patient it is with a receiver."""

    subscription_id: str
    after_seq: int = 0
    event_number: int = 0
    status: SubscriptionStatus = "active"
    failure_window_seconds: float = 3600.0
    poll_seconds: float = 20.0
    max_retry_interval_seconds: float = 60.0
    search_attributes: bool = True


@workflow.defn(name="SubscriptionDelivery")
class SubscriptionDeliveryWorkflow:
    """Delivers one subscription's notifications."""

    @workflow.init
    def __init__(self, input: DeliveryInput) -> None:
        self._in = input.model_copy()
        self._wanted: SubscriptionStatus | None = None

    @workflow.signal
    def set_status(self, status: str) -> None:
        """``active`` (re-activate, resume from where it stopped) or ``off`` (hold delivery);
        anything else is ignored (logged)."""
        if status == "active":
            self._wanted = "active"
        elif status == "off":
            self._wanted = "off"
        else:
            workflow.logger.warning("unknown subscription status ignored")

    @workflow.query
    def position(self) -> DeliveryInput:
        """Where the delivery stands: cursor, last event number, status."""
        return self._in

    @workflow.run
    async def run(self, input: DeliveryInput) -> None:
        """Deliver until the end of time (the API never ends a subscription; ``off`` holds it)."""
        await self._status(self._in.status)
        for _ in range(LOOPS_PER_RUN):
            if self._wanted is not None:
                await self._status(self._wanted)
                self._wanted = None
            if self._in.status != "active":
                await workflow.wait_condition(lambda: self._wanted is not None)
                continue
            changes = await workflow.execute_activity_method(
                DeliveryActivities.next_changes,
                ChangesRequest(subscription_id=self._in.subscription_id, after_seq=self._in.after_seq,
                               wait=self._in.poll_seconds),
                start_to_close_timeout=timedelta(seconds=self._in.poll_seconds + 30),
                heartbeat_timeout=timedelta(seconds=30), retry_policy=STATUS_RETRY)
            if await self._deliver(changes.matching):
                self._in.after_seq = max(self._in.after_seq, changes.last_seq)
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._in)

    async def _deliver(self, seqs: list[int]) -> bool:
        """Deliver these changes in order; False if one could not be (the subscription is then in
        ``error``, or was turned off, and its cursor stays before that change)."""
        for seq in seqs:
            if self._wanted == "off":
                return False
            try:
                await workflow.execute_activity_method(
                    DeliveryActivities.deliver,
                    DeliverRequest(subscription_id=self._in.subscription_id, seq=seq,
                                   event_number=self._in.event_number + 1),
                    start_to_close_timeout=timedelta(seconds=30),
                    schedule_to_close_timeout=timedelta(seconds=self._in.failure_window_seconds),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                             maximum_interval=timedelta(seconds=self._in.max_retry_interval_seconds),
                                             non_retryable_error_types=["UnknownChange"]))
            except ActivityError as err:
                workflow.logger.warning("delivery failed for the whole failure window",
                                        extra={"error": type(err.cause).__name__})
                await self._status("error", f"delivery of event {self._in.event_number + 1} failed for "
                                            f"{self._in.failure_window_seconds:g} s: {err.cause}")
                return False
            self._in.event_number += 1
            self._in.after_seq = seq
        return True

    async def _status(self, status: SubscriptionStatus, error: str | None = None) -> None:
        """Record the status in the subscription's row and on the search attribute."""
        self._in.status = status
        if self._in.search_attributes:  # first: the UI never shows an older status than the API
            workflow.upsert_search_attributes([sa.SUBSCRIPTION_STATUS.value_set(status)])
        await workflow.execute_activity_method(
            DeliveryActivities.set_status,
            StatusRequest(subscription_id=self._in.subscription_id, status=status, error=error),
            start_to_close_timeout=timedelta(seconds=10), retry_policy=STATUS_RETRY)
