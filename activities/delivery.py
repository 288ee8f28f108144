"""Activities of a subscription's delivery: read the order changes it has not seen, and push one.

The order book's ``order_changes`` table is the outbox: every new or changed order is a row,
written in the same transaction as the change, in ``seq`` order. A subscription's workflow
(:mod:`workflows.subscription_delivery`) asks :meth:`DeliveryActivities.next_changes` for rows
after its cursor (a long poll in the activity, so an idle subscription costs a few history events
a minute), then delivers each matching one, in order, with :meth:`DeliveryActivities.deliver`
— retried by Temporal with backoff — and moves its cursor. Nothing is lost when a process stops:
the rows stay, and the cursor is in the workflow and in the subscription's row.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.order_book import OrderBook
from activities.subscriptions import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    SUBSCRIPTION_HEADER,
    SubscriptionStatus,
    SubscriptionStore,
    sign,
)

if TYPE_CHECKING:
    import httpx

POLL_EVERY = 0.2  # seconds between looks at the outbox while a long poll waits
SEND_TIMEOUT = 10.0  # seconds a receiver has to answer one notification
# A receiver that is down or refuses is expected, not a bug: retried without a traceback per attempt.
BENIGN = ApplicationErrorCategory.BENIGN


class ChangesRequest(BaseModel):
    """Changes after ``after_seq`` that match the subscription; wait up to ``wait`` seconds for one."""

    subscription_id: str
    after_seq: int
    wait: float


class Changes(BaseModel):
    """The matching changes' seqs, in order, and the last seq looked at (the next cursor)."""

    matching: list[int]
    last_seq: int


class DeliverRequest(BaseModel):
    """Push change ``seq`` as notification ``event_number`` (the same number on every retry)."""

    subscription_id: str
    seq: int
    event_number: int


class StatusRequest(BaseModel):
    """Set the subscription's status (``error`` with its reason)."""

    subscription_id: str
    status: SubscriptionStatus
    error: str | None = None


class DeliveryActivities:
    """The delivery activities, bound to the order book and the subscriptions (one database)."""

    def __init__(self, book: OrderBook, subscriptions: SubscriptionStore, public_url: str):
        self.book = book
        self.subscriptions = subscriptions
        self.public_url = public_url
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """One client for every delivery, made on the first: a client per request would load the CA
        bundle each time (~200 ms here) and could not keep connections to a receiver open; made at
        start, it cost every worker (and every ``vcf simulate``) that load."""
        import httpx

        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(timeout=SEND_TIMEOUT, follow_redirects=False)
            return self._http

    @activity.defn(name="next_changes")
    def next_changes(self, request: ChangesRequest) -> Changes:
        """Matching changes after the cursor, as soon as there is one or ``wait`` has passed."""
        sub = self.subscriptions.get(request.subscription_id)
        if sub is None:
            raise ApplicationError("subscription: unknown", non_retryable=True, type="UnknownSubscription")
        deadline = time.monotonic() + request.wait
        last = request.after_seq
        while True:
            rows = self.book.changes_after(last, patient_id=sub.patient_id, limit=100)
            matching = []
            for change in rows:
                order = self.book.get(change.order_id)
                if order is not None and sub.matches(order.resource, order.patient_id):
                    matching.append(change.seq)
            if rows:
                last = rows[-1].seq
            if matching or time.monotonic() >= deadline or len(rows) == 100:
                return Changes(matching=matching, last_seq=last)
            activity.heartbeat(last)
            time.sleep(POLL_EVERY)

    @activity.defn(name="deliver_change")
    def deliver(self, request: DeliverRequest) -> None:
        """POST the change's notification to the endpoint, signed; any answer but 2xx fails (and
        Temporal retries it with backoff)."""
        sub = self.subscriptions.get(request.subscription_id)
        change = next(iter(self.book.changes_after(request.seq - 1, limit=1)), None)
        if sub is None or change is None or change.seq != request.seq:
            raise ApplicationError("subscription or change: unknown", non_retryable=True, type="UnknownChange")
        order = self.book.get(change.order_id)
        assert order is not None, "a change names an order that exists"
        # The FHIR models, the API module they live in and the HTTP client load on the first
        # delivery, not with every worker: a third of its start-up, for subscriptions most runs never have.
        import httpx

        from api.fhir_notification import notification

        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        bundle = notification(self.book, order, change, subscription_id=sub.id, event_number=request.event_number,
                              base_url=self.public_url, sent_at=sent_at)
        body = json.dumps(bundle, separators=(",", ":")).encode()
        headers = dict(h.split(":", 1) for h in sub.headers)
        headers = {k.strip(): v.strip() for k, v in headers.items()}
        headers.update({"Content-Type": "application/fhir+json", SIGNATURE_HEADER: sign(sub.secret, body),
                        EVENT_HEADER: str(request.event_number), SUBSCRIPTION_HEADER: sub.id})
        try:
            answer = self.http.post(sub.endpoint, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ApplicationError(f"endpoint: not reached ({type(err).__name__})", type="DeliveryFailed",
                                   category=BENIGN) from None
        if not 200 <= answer.status_code < 300:
            raise ApplicationError(f"endpoint: answered {answer.status_code}", type="DeliveryFailed", category=BENIGN)
        self.subscriptions.delivered(sub.id, request.seq, request.event_number)

    @activity.defn(name="set_subscription_status")
    def set_status(self, request: StatusRequest) -> None:
        """Record the status the delivery is in (shown by the API)."""
        self.subscriptions.set_status(request.subscription_id, request.status, request.error)

    def all(self) -> list:
        """The activity callables, for the worker."""
        return [self.next_changes, self.deliver, self.set_status]
