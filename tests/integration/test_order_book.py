"""The order book and its activities, on SQLite and on PostgreSQL: idempotent, closed-loop."""

from __future__ import annotations

import hashlib
import re

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.database import Database, IntegrityError
from activities.order_book import OrderBook
from activities.orders import OrderActivities, OrderBatch, OrderRequest, OverdueRequest, ResultRequest
from activities.results_after_end import AFTER_END_KIND, record_result_after_end
from activities.subscriptions import SubscriptionStore
from pathway.contract import Action, parse_event
from pathway.guideline import load_definition


def request(action_id: str, kind: str = "order_radiograph", day: float = 14.0) -> OrderRequest:
    return OrderRequest(workflow_id="vcf-pathway-pt-ob", patient_id="pt-ob",
                        action=Action(id=action_id, kind=kind, day=day, rationale="r", citation="c"),
                        title="X-ray spine", resource="ServiceRequest")


@pytest.fixture
def order_book(database: Database) -> OrderBook:
    """An order book on an empty database, once per backend."""
    return OrderBook(database)


def test_placing_the_same_action_twice_orders_once(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    first = env.run(activities.place_order, request("order_radiograph:day-14"))
    again = env.run(activities.place_order, request("order_radiograph:day-14"))
    other = env.run(activities.place_order, request("order_radiograph:day-42", day=42))
    assert first.created and not again.created and other.created
    assert first.order_id == again.order_id != other.order_id
    assert len(order_book.list(patient_id="pt-ob")) == 2


def test_a_nul_in_an_orders_text_is_written_as_a_replacement_character(order_book: OrderBook):
    """A side effect sent straight to a workflow (not through the API, which refuses it) may carry a NUL
    into a task's rationale: PostgreSQL cannot store one, and the write would fail on every retry."""
    activities = OrderActivities(order_book)
    action = Action(id="request_clinician_review:side_effect:3", kind="request_clinician_review", day=3,
                    rationale="Side effect of x\x00y: dizzy", citation="c", details={"drug": "x\x00y"})
    receipt = ActivityEnvironment().run(activities.place_order, OrderRequest(
        workflow_id="vcf-pathway-pt-ob", patient_id="pt-ob", action=action, title="Review", resource="Task"))
    order = order_book.get(receipt.order_id)
    assert order is not None
    assert order.rationale == "Side effect of x\ufffdy: dizzy" and order.details["drug"] == "x\x00y"
    assert order_book.set_status(receipt.order_id, "cancelled", "withdrawn by dr\x00x")
    assert order_book.get(receipt.order_id).status_reason == "withdrawn by dr\ufffdx"


def test_the_order_book_survives_a_reopen(database: Database):
    OrderBook(database).place(
        idempotency_key="wf/a", patient_id="p", workflow_id="wf", action_id="a", kind="order_dxa",
        resource="ServiceRequest", priority="routine", day=0, title="t", rationale="r", citation="c",
        details={"x": 1}, codes=[{"system": "s", "code": "77080", "display": "d"}])
    rows = OrderBook(database).list()
    assert [(r.action_id, r.details, r.codes[0].code) for r in rows] == [("a", {"x": 1}, "77080")]
    # The key is enforced by the database itself.
    with pytest.raises(IntegrityError), database.transaction() as db:
        db.execute("INSERT INTO orders SELECT 'other-id', idempotency_key, patient_id, workflow_id, action_id,"
                   " kind, resource, status, priority, day, title, rationale, citation, details, codes,"
                   " created_at, updated_at, status_reason FROM orders")


def test_a_result_fulfils_the_oldest_open_order_once(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    env.run(activities.place_order, request("order_radiograph:day-14"))
    env.run(activities.place_order, request("order_radiograph:day-42", day=42))
    result = ResultRequest(workflow_id="vcf-pathway-pt-ob", event_type="radiograph", day=44, result_key="event-7")
    first = env.run(activities.record_result, result)
    retried = env.run(activities.record_result, result)  # an activity retry fulfils nothing more
    assert first == retried
    status = {o.action_id: o.status for o in order_book.list()}
    assert status == {"order_radiograph:day-14": "completed", "order_radiograph:day-42": "active"}
    # A film observed on day 10, reported late: no order was placed by its day (as the decisions read it).
    late = ResultRequest(workflow_id="vcf-pathway-pt-ob", event_type="radiograph", day=10, result_key="event-8")
    assert env.run(activities.record_result, late) == []


def test_from_revision_6_a_result_fulfils_the_order_the_decisions_matched_it_to(order_book: OrderBook):
    """pathway.results.observe names the order as the result arrives; the book closes that one (once)."""
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    for day in (14, 42, 84):
        env.run(activities.place_order, request(f"order_radiograph:day-{day}", day=day))

    def result(key: str, answers: str | None) -> list[str]:
        return env.run(activities.record_result, ResultRequest(workflow_id="vcf-pathway-pt-ob",
                                                               event_type="radiograph", day=43, result_key=key,
                                                               order_action_id=answers))
    first = result("event-3", "order_radiograph:day-42")
    assert result("event-3", "order_radiograph:day-42") == first  # a retry
    assert result("event-4", "") == []  # no order waited for it
    status = {o.action_id: o.status for o in order_book.list()}
    assert status == {"order_radiograph:day-14": "active", "order_radiograph:day-42": "completed",
                      "order_radiograph:day-84": "active"}


def test_invalid_orders_fail_without_retry(order_book: OrderBook):
    bad = request("order_radiograph:day-14")
    bad.action.id = ""
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(OrderActivities(order_book).place_order, bad)
    assert err.value.non_retryable and "action" in str(err.value)


def test_order_ids_are_random_but_a_retry_answers_the_same_order(order_book: OrderBook, tmp_path):
    env, activities = ActivityEnvironment(), OrderActivities(order_book)
    first = env.run(activities.place_order, request("order_mri:day-0"))
    retried = env.run(activities.place_order, request("order_mri:day-0"))
    assert first.order_id == retried.order_id and not retried.created
    # Not derived from the idempotency key: another book places the same action under another id.
    other = OrderBook(tmp_path / "other.db")
    assert env.run(OrderActivities(other).place_order, request("order_mri:day-0")).order_id != first.order_id
    old_scheme = "ord-" + hashlib.sha256(b"vcf-pathway-pt-ob/order_mri:day-0").hexdigest()[:20]
    assert first.order_id != old_scheme and re.fullmatch(r"ord-[0-9a-f]{20}", first.order_id)


def test_an_overdue_task_points_at_its_order_found_by_key(order_book: OrderBook):
    env, activities = ActivityEnvironment(), OrderActivities(order_book)
    placed = env.run(activities.place_order, request("order_mri:day-0", kind="order_mri", day=0))
    overdue = OverdueRequest(workflow_id="vcf-pathway-pt-ob", patient_id="pt-ob", order_action_id="order_mri:day-0",
                             order_kind="order_mri", order_day=0, day=14, rationale="r", citation="c")
    task = env.run(activities.escalate_overdue_result, overdue)
    assert order_book.get(task.order_id).details["order_id"] == placed.order_id
    assert env.run(activities.escalate_overdue_result, overdue).order_id == task.order_id  # once


def test_after_completion_only_a_result_still_awaited_is_escalated(order_book: OrderBook):
    env, activities = ActivityEnvironment(), OrderActivities(order_book)

    def screening(day: int) -> str:
        action_id = f"order_adjacent_fracture_screening:day-{day}"
        env.run(activities.place_order, request(action_id, kind="order_adjacent_fracture_screening", day=day))
        return action_id

    def after_end(action_id: str):
        return env.run(activities.escalate_overdue_result_after_end, OverdueRequest(
            workflow_id="vcf-pathway-pt-ob", patient_id="pt-ob", order_action_id=action_id,
            order_kind="order_adjacent_fracture_screening", order_day=365, day=379, rationale="r", citation="c"))

    fulfilled, missing, refused, acknowledged = screening(365), screening(366), screening(367), screening(368)
    by_action = {o.action_id: o.id for o in order_book.list()}
    record_result_after_end(order_book, workflow_id="vcf-pathway-pt-ob", patient_id="pt-ob", day=365.5,
                            event=parse_event({"type": "radiograph", "height_loss_pct": 25}), result_key="r1",
                            status="completed")  # fulfils the newest placed by its day: day 365's
    for move in ("received", "rejected"):
        assert order_book.move_task(by_action[refused], move, if_version=None, by="imaging").outcome == "moved"
    order_book.set_status(by_action[acknowledged], "acknowledged", "seen by the care team")
    assert [order_book.awaits_result(by_action[a]) for a in (fulfilled, missing, refused, acknowledged)] == \
        [False, True, False, True]
    assert after_end(fulfilled) is None and after_end(refused) is None
    task = after_end(missing)
    assert task is not None and after_end(missing).order_id == task.order_id  # once
    assert after_end(acknowledged) is not None  # acknowledged before its result: still awaited
    escalated = {o.details["order_action_id"] for o in order_book.list() if o.kind == "escalate_overdue_result"}
    assert escalated == {missing, acknowledged}


def test_orders_in_an_existing_database_keep_their_ids(database: Database):
    legacy = "ord-" + hashlib.sha256(b"wf/a").hexdigest()[:20]  # how ids were made before they were random
    OrderBook(database)
    with database.transaction() as db:
        db.execute("INSERT INTO orders (id, idempotency_key, patient_id, workflow_id, action_id, kind, resource,"
                   " status, priority, day, title, rationale, citation, details, codes, created_at, updated_at) VALUES"
                   " (?, 'wf/a', 'p', 'wf', 'a', 'order_dxa', 'ServiceRequest', 'active', 'routine', 0, 't', 'r', 'c',"
                   " '{}', '[]', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')", (legacy,))
    order, created = OrderBook(database).place(
        idempotency_key="wf/a", patient_id="p", workflow_id="wf", action_id="a", kind="order_dxa",
        resource="ServiceRequest", priority="routine", day=0, title="t", rationale="r", citation="c",
        details={}, codes=[])
    assert (order.id, created) == (legacy, False)
    assert OrderBook(database).get(legacy) is not None and OrderBook(database).get_by_key("wf/a").id == legacy


def test_task_moves_and_the_outbox_are_the_same_on_both_backends(order_book: OrderBook):
    """The fulfilment Task (its version the ETag), its history and the changes outbox, per backend."""
    subscriptions = SubscriptionStore(order_book.database)
    env = ActivityEnvironment()
    order = env.run(OrderActivities(order_book).place_order, request("order_radiograph:day-14"))
    sub = subscriptions.create(criteria="Task?patient=pt-ob", endpoint="http://127.0.0.1:9/", headers=[],
                               secret="s" * 16)
    placed = order_book.task(order.order_id)
    assert placed is not None and (placed.status, placed.version) == ("requested", 1)

    assert order_book.move_task(order.order_id, "accepted", if_version=1, by="ris").outcome == "moved"
    stale = order_book.move_task(order.order_id, "in-progress", if_version=1, by="ris")
    assert stale.outcome == "stale" and stale.task is not None and stale.task.version == 2
    assert order_book.move_task(order.order_id, "requested", if_version=2, by="ris").outcome == "illegal"
    assert order_book.move_task(order.order_id, "in-progress", if_version=2, by="ris").outcome == "moved"
    done = order_book.move_task(order.order_id, "completed", if_version=None, by="ris")
    assert done.outcome == "moved" and done.task is not None and done.task.order_status == "completed"

    history = order_book.task_history(order.order_id)
    assert [(c.version, c.task_status) for c in history] == [
        (1, "requested"), (2, "accepted"), (3, "in-progress"), (4, "completed")]
    # The subscription sees only what changed after it was made, in order, once.
    after = order_book.changes_after(sub.delivered_seq, patient_id="pt-ob")
    assert [c.task_status for c in after] == ["accepted", "in-progress", "completed"]
    assert after[0].seq < after[1].seq < after[2].seq
    subscriptions.delivered(sub.id, after[-1].seq, 3)
    subscriptions.delivered(sub.id, after[0].seq, 1)  # a late, older record never moves the cursor back
    stored = subscriptions.get(sub.id)
    assert stored is not None and (stored.delivered_seq, stored.event_count) == (after[-1].seq, 3)


def test_a_batch_retried_after_a_partial_failure_writes_only_what_is_missing(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    env.run(activities.place_order, request("order_radiograph:day-14"))  # written before the failure
    batch = OrderBatch(workflow_id="vcf-pathway-pt-ob",
                       orders=[request("order_radiograph:day-14"), request("order_radiograph:day-42", day=42)])
    first = env.run(activities.place_orders, batch)
    retried = env.run(activities.place_orders, batch)  # an activity retry, or a replay
    assert first == retried and set(first.placed) == {"order_radiograph:day-14", "order_radiograph:day-42"}
    assert len(order_book.list(patient_id="pt-ob")) == 2


def test_a_batch_fulfils_the_order_a_film_at_its_instant_adopted_once_even_when_retried(order_book: OrderBook):
    """Decisions revision 7: the film observed a second before the week-2 order is written with it."""
    activities, env = OrderActivities(order_book), ActivityEnvironment()
    film = ResultRequest(workflow_id="vcf-pathway-pt-ob", event_type="radiograph", day=14,
                         result_key="adopted-order_radiograph:day-14", order_action_id="order_radiograph:day-14")
    batch = OrderBatch(workflow_id="vcf-pathway-pt-ob", orders=[request("order_radiograph:day-14")], adopted=[film])
    first = env.run(activities.place_orders, batch)
    retried = env.run(activities.place_orders, batch)  # an activity retry, or a replay
    (order,) = order_book.list(patient_id="pt-ob")
    assert first == retried and order.status == "completed"
    assert order.status_reason == "radiograph result on day 14 [adopted-order_radiograph:day-14]"
    assert len(order_book.task_history(order.id)) == 2  # requested, then completed: once each


def test_a_batch_refuses_an_invalid_order_alone_and_keeps_the_step_order(order_book: OrderBook):
    activities = OrderActivities(order_book)
    env = ActivityEnvironment()
    env.run(activities.place_order, request("order_mri:day-0", kind="order_mri", day=0))
    result = ResultRequest(workflow_id="vcf-pathway-pt-ob", event_type="mri", day=3, result_key="event-1")
    batch = OrderBatch(workflow_id="vcf-pathway-pt-ob", result=result,
                       orders=[request("", kind="order_dxa"), request("order_radiograph:day-14")])
    receipt = env.run(activities.place_orders, batch)
    assert list(receipt.placed) == ["order_radiograph:day-14"]
    assert "missing id" in receipt.refused["order_dxa"]
    status = {o.action_id: o.status for o in order_book.list()}
    assert status == {"order_mri:day-0": "completed", "order_radiograph:day-14": "active"}


def test_a_new_fracture_level_on_a_result_after_the_end_raises_a_routine_task_once(order_book: OrderBook):
    activities, env = OrderActivities(order_book), ActivityEnvironment()
    screening = request("order_adjacent_fracture_screening:day-365", kind="order_adjacent_fracture_screening", day=365)
    placed = env.run(activities.place_order, screening)
    after = {"workflow_id": "vcf-pathway-pt-ob", "patient_id": "pt-ob", "day": 370.0, "status": "completed",
             "enrolled_level": "L2"}
    image = parse_event({"type": "radiograph", "height_loss_pct": 27, "new_fracture_level": "L3"})
    done = record_result_after_end(order_book, event=image, result_key="r1", **after)
    again = record_result_after_end(order_book, event=image, result_key="r1", **after)
    assert done == again and done.fulfilled == [placed.order_id] and done.priority == "routine"
    (task,) = [o for o in order_book.list() if o.kind == AFTER_END_KIND]
    assert task.id == done.escalation and task.priority == "routine" and task.details["new_fracture_level"] == "L3"
    assert "MRI of the new level" in task.rationale and "routine care-team task" in done.summary(image, "completed")
    # The guideline's own section for a new fracture, as the pathway's flag cites it.
    assert load_definition().actions["flag_new_vertebral_fracture"].section in done.citation
    # The enrolled level again, or no level: the order is fulfilled and no task is raised.
    env.run(activities.place_order, request("order_radiograph:day-400", day=400))
    same = parse_event({"type": "radiograph", "height_loss_pct": 27, "new_fracture_level": "L2"})
    quiet = record_result_after_end(order_book, event=same, result_key="r2", **{**after, "day": 401.0})
    assert quiet.fulfilled and quiet.escalation is None
    assert [o.kind for o in order_book.list()].count(AFTER_END_KIND) == 1


def test_a_new_fracture_after_the_end_with_a_red_flag_raises_an_urgent_task(order_book: OrderBook):
    """As in the pathway: with a history of cancer the new fracture may be the same disease."""
    activities, env = OrderActivities(order_book), ActivityEnvironment()
    env.run(activities.place_order, request("order_adjacent_fracture_screening:day-182",
                                            kind="order_adjacent_fracture_screening", day=182))
    image = parse_event({"type": "radiograph", "height_loss_pct": 27, "new_fracture_level": "T12"})
    done = record_result_after_end(order_book, event=image, day=190.0, result_key="r1", workflow_id="vcf-pathway-pt-ob",
                                   patient_id="pt-ob", status="withdrawn", enrolled_level="L2",
                                   red_flags=["history_of_cancer"])
    (task,) = [o for o in order_book.list() if o.kind == AFTER_END_KIND]
    assert done.priority == task.priority == "urgent" and task.details["red_flags"] == "history_of_cancer"
    assert "urgent MRI of the new level" in task.rationale and task.title.startswith("Urgent: radiograph")


def test_a_pathologic_mri_after_the_end_names_calcitonin(order_book: OrderBook):
    """A pathologic fracture stops calcitonin (safety rule 7); after a withdrawal its course may still run."""
    activities, env = OrderActivities(order_book), ActivityEnvironment()
    env.run(activities.place_order, request("order_mri", kind="order_mri", day=0))
    mri = parse_event({"type": "mri", "etiology": "infection"})
    done = record_result_after_end(order_book, event=mri, day=4.0, result_key="m1", workflow_id="vcf-pathway-pt-ob",
                                   patient_id="pt-ob", status="withdrawn", enrolled_level="L2")
    (task,) = [o for o in order_book.list() if o.kind == AFTER_END_KIND]
    assert done.priority == "urgent" and "stops calcitonin if it still runs" in task.rationale
    assert f"fulfils order {done.fulfilled[0]} (order_mri)" in done.summary(mri, "withdrawn")
    env.run(activities.place_order, request("order_mri:T12", kind="order_mri", day=90))
    late = record_result_after_end(order_book, event=mri, day=100.0, result_key="m2", workflow_id="vcf-pathway-pt-ob",
                                   patient_id="pt-ob", status="withdrawn", enrolled_level="L2")
    (later,) = [o for o in order_book.list() if o.id == late.escalation]
    assert "calcitonin" not in later.rationale  # no course runs past day 28


def test_an_indeterminate_mri_or_a_collapse_after_the_end_reaches_the_care_team(order_book: OrderBook):
    """A result never reaches no one: what the pathway would have acted on raises a routine task."""
    activities, env = OrderActivities(order_book), ActivityEnvironment()
    env.run(activities.place_order, request("order_mri", kind="order_mri", day=0))
    for day in (365, 366, 367):
        env.run(activities.place_order, request(f"order_adjacent_fracture_screening:day-{day}",
                                                kind="order_adjacent_fracture_screening", day=day))
    after = {"workflow_id": "vcf-pathway-pt-ob", "patient_id": "pt-ob", "status": "withdrawn",
             "enrolled_level": "L2", "enrolled_height_loss": 25}

    def result(day: float, key: str, **raw) -> object:
        return record_result_after_end(order_book, event=parse_event(raw), day=day, result_key=key, **after)
    unclear = result(8, "m1", type="mri", etiology="indeterminate")
    collapsed = result(365.5, "r1", type="radiograph", height_loss_pct=55)
    steady = result(366.5, "r2", type="radiograph", height_loss_pct=27)  # 8% more: not 20% of 25
    assert unclear.escalation and unclear.priority == "routine" and collapsed.escalation
    assert steady.fulfilled and steady.escalation is None
    tasks = {o.id: o for o in order_book.list() if o.kind == AFTER_END_KIND}
    assert "indeterminate" in tasks[unclear.escalation].rationale
    assert "height loss 55% vs 25% at enrollment" in tasks[collapsed.escalation].rationale


def test_an_order_the_database_refuses_mid_batch_is_refused_alone(order_book: OrderBook):
    """A constraint broken by one order of a step (here a trigger) undoes that order's writes only: on
    PostgreSQL a failed statement would otherwise abort the whole step's transaction."""
    with order_book.database.transaction() as db:
        if order_book.database.dialect == "sqlite":
            db.execute("CREATE TRIGGER refuse_title BEFORE INSERT ON orders WHEN NEW.title = 'refused here'"
                       " BEGIN SELECT RAISE(ABORT, 'refused by a constraint'); END")
        else:
            db.execute("CREATE FUNCTION refuse_title() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                       " IF NEW.title = 'refused here' THEN RAISE EXCEPTION 'refused by a constraint'; END IF;"
                       " RETURN NEW; END $$")
            db.execute("CREATE TRIGGER refuse_title BEFORE INSERT ON orders FOR EACH ROW"
                       " EXECUTE FUNCTION refuse_title()")
    activities, env = OrderActivities(order_book), ActivityEnvironment()
    env.run(activities.place_order, request("order_mri:day-0", kind="order_mri", day=0))
    refused = request("order_dxa", kind="order_dxa").model_copy(update={"title": "refused here"})
    batch = OrderBatch(workflow_id="vcf-pathway-pt-ob", orders=[request("order_radiograph:day-14"), refused,
                                                                request("order_radiograph:day-42", day=42)],
                       result=ResultRequest(workflow_id="vcf-pathway-pt-ob", event_type="mri", day=3, result_key="e-1"))
    receipt = env.run(activities.place_orders, batch)
    assert list(receipt.placed) == ["order_radiograph:day-14", "order_radiograph:day-42"]
    assert "refused by a constraint" in receipt.refused["order_dxa"]
    status = {o.action_id: o.status for o in order_book.list()}
    assert status == {"order_mri:day-0": "completed", "order_radiograph:day-14": "active",
                      "order_radiograph:day-42": "active"}


@pytest.mark.parametrize("key", ["late-mri", "mri [2026] #4]", "nul\x00key"])
def test_a_result_after_the_end_is_read_back_once_whatever_its_key_and_after_acknowledgement(
        order_book: OrderBook, key: str):
    """The state and the timeline read results after the end back from the order book, and a result sent again
    is answered from it: an event id may hold brackets (or, signalled straight to a workflow, a NUL the book
    stores as U+FFFD), and an acknowledgement appends to the order's reason."""
    from activities.results_after_end import recorded_after_end, recorded_result_after_end

    activities, env = OrderActivities(order_book), ActivityEnvironment()
    for day in (0, 30):  # two MRI orders open: a result sent again must not complete the second
        env.run(activities.place_order, request(f"order_mri:{day}", kind="order_mri", day=day))
    mri = parse_event({"type": "mri", "etiology": "malignant"})
    after = {"workflow_id": "vcf-pathway-pt-ob", "patient_id": "pt-ob", "status": "withdrawn", "enrolled_level": "L2"}
    done = record_result_after_end(order_book, event=mri, day=40.0, result_key=key, **after)
    assert order_book.acknowledge_result(done.fulfilled[0], "seen [by dr-7]", by="dr-7")
    again = record_result_after_end(order_book, event=mri, day=40.0, result_key=key, **after)
    assert again.fulfilled == done.fulfilled and again.escalation == done.escalation
    assert [o.status for o in order_book.list() if o.kind == "order_mri"].count("active") == 1
    (recorded,) = recorded_after_end(order_book, "vcf-pathway-pt-ob")
    assert recorded.order.id == done.fulfilled[0] and recorded.finding == "malignant"
    assert recorded.task is not None and recorded.task.id == done.escalation
    note = recorded.note()
    assert note.id == "after_end:mri:40" and "mri result after the pathway ended: malignant" in note.text
    assert recorded_result_after_end(order_book, workflow_id="vcf-pathway-pt-ob", event=mri,
                                     result_key=key).fulfilled == done.fulfilled


def test_a_result_after_the_end_recorded_by_the_release_before_is_read_back(order_book: OrderBook):
    """Before the finding was kept, the reason read "mri result after the pathway ended, day 40 [KEY]"."""
    from activities.results_after_end import recorded_after_end

    activities, env = OrderActivities(order_book), ActivityEnvironment()
    env.run(activities.place_order, request("order_mri", kind="order_mri", day=0))
    (closed,) = order_book.close_open("vcf-pathway-pt-ob", ["order_mri"], "completed",
                                      "mri result after the pathway ended, day 40 [old-1]")
    (recorded,) = recorded_after_end(order_book, "vcf-pathway-pt-ob")
    assert (recorded.order.id, recorded.result_key, recorded.day, recorded.finding) == (closed, "old-1", 40.0, None)


def test_two_results_of_one_day_after_the_end_are_two_notes_in_the_order_they_came(order_book: OrderBook):
    from activities.results_after_end import recorded_after_end

    activities, env = OrderActivities(order_book), ActivityEnvironment()
    for day in (14, 42):
        env.run(activities.place_order, request(f"order_radiograph:day-{day}", day=day))
    after = {"workflow_id": "vcf-pathway-pt-ob", "patient_id": "pt-ob", "status": "withdrawn", "enrolled_level": "L2"}
    for key, height in (("film-a", 27), ("film-b", 25)):
        record_result_after_end(order_book, event=parse_event({"type": "radiograph", "height_loss_pct": height}),
                                day=55.0, result_key=key, **after)
    notes = [r.note() for r in recorded_after_end(order_book, "vcf-pathway-pt-ob")]
    assert [n.id for n in notes] == ["after_end:radiograph:55", "after_end:radiograph:55:2"]
    assert "height loss 27%" in notes[0].text and "height loss 25%" in notes[1].text


def test_an_exam_its_performer_completed_still_waits_for_its_report(order_book: OrderBook):
    """Radiology completes the task (the film is taken), the care team acknowledges it: the report that comes
    after completes it once — a second result finds nothing (and, on PostgreSQL, never the same order)."""
    env = ActivityEnvironment()
    order = env.run(OrderActivities(order_book).place_order, request("order_radiograph:day-14"))
    for status in ("accepted", "in-progress", "completed"):
        assert order_book.move_task(order.order_id, status, if_version=None, by="ris").outcome == "moved"
    assert order_book.acknowledge_result(order.order_id, "film seen", by="dr-1")
    assert order_book.awaits_result(order.order_id)
    closed = order_book.close_open("vcf-pathway-pt-ob", ["order_radiograph"], "completed", "report [r-1]",
                                   awaiting_result=True)
    assert closed == [order.order_id] and not order_book.awaits_result(order.order_id)
    assert order_book.close_open("vcf-pathway-pt-ob", ["order_radiograph"], "completed", "report [r-2]",
                                 awaiting_result=True) == []
    stored = order_book.get(order.order_id)
    assert stored is not None and stored.status_reason == "report [r-1]"
