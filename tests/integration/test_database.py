"""The database layer and the API's stores on it, on SQLite and on PostgreSQL alike: the registry's
claims, the audit trail, paging, and schema migrations (also two processes migrating at once)."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from activities.database import Database, IntegrityError, PostgresDatabase, open_database
from activities.order_book import OrderBook, position
from api.audit import AuditTrail
from api.registry import IdCaseClash, Registry

EXPECTED_VERSIONS = {("orders", 1), ("orders", 2), ("registry", 1), ("registry", 2), ("audit", 1)}


def place(book: OrderBook, n: int, patient: str = "pt-db") -> None:
    for i in range(n):
        book.place(idempotency_key=f"wf-{patient}/a{i}", patient_id=patient, workflow_id=f"wf-{patient}",
                   action_id=f"a{i}", kind="order_dxa", resource="ServiceRequest", priority="routine",
                   day=i % 3 + 0.25, title="t", rationale="r", citation="c", details={}, codes=[])


def test_enrollment_claims_are_idempotent_and_refuse_a_case_clash(database: Database):
    registry = Registry(database)
    first = registry.claim("pt-A1", "vcf-pathway-pt-A1", '{"a":1}')
    again = registry.claim("pt-A1", "vcf-pathway-pt-A1", '{"a":2}')  # the record held answers, not the new body
    assert first.body == again.body == '{"a":1}' and first.started_at is None
    with pytest.raises(IdCaseClash):
        registry.claim("pt-a1", "vcf-pathway-pt-a1", "{}")
    registry.release("pt-A1")
    assert registry.get("pt-A1") is None
    registry.mark_started("pt-A1", "vcf-pathway-pt-A1", '{"a":1}')
    registry.mark_started("pt-A1", "vcf-pathway-pt-A1", '{"a":1}')
    record = registry.get("pt-A1")
    assert record is not None and record.started_at is not None and record.enrollment == {"a": 1}
    registry.release("pt-A1")  # a started pathway is never released
    assert registry.get("pt-A1") is not None


def test_event_ids_are_claimed_once_by_the_primary_key(database: Database):
    registry = Registry(database)
    with ThreadPoolExecutor(8) as pool:  # concurrent requests with one event id: one of them sends it
        answers = list(pool.map(lambda _: registry.claim_event("pt-e", "e-1", "pain", "h1", "writer"), range(16)))
    assert sorted(answers) == ["new"] + ["same"] * 15
    assert registry.claim_event("pt-e", "e-1", "pain", "h2") == "different"
    assert registry.submitted_by("pt-e", "e-1") == "writer"
    registry.release_event("pt-e", "e-1")
    assert registry.claim_event("pt-e", "e-1", "pain", "h2") == "new"


def test_the_audit_trail_appends_reads_and_refuses_changes(database: Database):
    trail = AuditTrail(database)
    for status in (200, 404, 202):
        trail.append(credential="writer", patient_ids=["pt-au"], method="GET", route="/v1/patients/{patient_id}",
                     action="read", status=status)
    trail.append(credential="x", patient_ids=["pt-other"], method="GET", route="/v1/x", action="read", status=200)
    records = trail.for_patient("pt-au")
    assert [r.status for r in records] == [200, 404, 202] and records[0].seq < records[-1].seq
    assert [r.status for r in trail.for_patient("pt-au", limit=2)] == [404, 202]  # the newest, oldest first
    for change in ("UPDATE api_audit SET status = 500", "DELETE FROM api_audit"):
        with pytest.raises(IntegrityError, match="append-only"), database.transaction() as db:
            db.execute(change)
    with pytest.raises(IntegrityError), database.transaction() as db:  # the CHECK holds too
        db.execute("INSERT INTO api_audit (recorded_at, credential, patient_id, method, route, action, status)"
                   " VALUES ('t', 'x', 'p', 'GET', '/v1/x', 'erase', 200)")
    assert len(trail.for_patient("pt-au")) == 3


def test_pages_and_counts_agree_with_the_whole_listing(database: Database):
    book = OrderBook(database)
    place(book, 25)
    whole = book.list()
    assert book.count() == 25 and book.count(patient_id="pt-db", status="active") == 25
    pages, after = [], None
    while page := book.page(after=after, limit=7):
        pages.extend(page)
        after = position(page[-1])
    assert [o.id for o in pages] == [o.id for o in whole]
    assert [o.id for o in book.page(skip=20, limit=100)] == [o.id for o in whole[20:]]


def test_concurrent_results_each_fulfil_a_different_order(database: Database):
    place(OrderBook(database), 6)  # six open DXA orders of one pathway
    books = [OrderBook(database) for _ in range(4)]  # as four workers would hold them
    with ThreadPoolExecutor(4) as pool:
        closed = list(pool.map(lambda i: books[i % 4].close_open("wf-pt-db", ["order_dxa"], "completed", f"r{i}",
                                                                 oldest_first=True, limit=1), range(8)))
    ids = [order_id for batch in closed for order_id in batch]
    assert len(ids) == len(set(ids)) == 6  # six results took the six orders, each a different one
    assert sorted(len(batch) for batch in closed) == [0, 0, 1, 1, 1, 1, 1, 1]
    assert {o.status for o in books[0].list()} == {"completed"}


def test_a_result_fulfils_an_order_acknowledged_before_it_and_its_own_acknowledgement_follows(database: Database):
    book = OrderBook(database)
    place(book, 2, patient="pt-ack")  # two open DXA orders, days 0.25 and 1.25
    first, second = sorted(book.list(patient_id="pt-ack"), key=lambda o: o.day)
    assert book.set_status(first.id, "acknowledged", "acknowledged by dr-1", by="dr-1")
    assert not book.acknowledge_result(second.id, "too early", by="dr-1")  # no result yet
    fulfilled = book.close_open("wf-pt-ack", ["order_dxa"], "completed", "dxa result", oldest_first=True, limit=1,
                                awaiting_result=True)
    assert fulfilled == [first.id]  # the oldest, though acknowledged before its result
    assert book.acknowledge_result(first.id, "acknowledged by dr-2: reviewed", by="dr-2")
    assert not book.acknowledge_result(first.id, "again", by="dr-2")
    again = book.close_open("wf-pt-ack", ["order_dxa"], "completed", "dxa result 2", oldest_first=True, limit=1,
                            awaiting_result=True)
    assert again == [second.id]  # a resulted and acknowledged order is never fulfilled twice
    assert book.task(first.id).status == "completed" and book.get(first.id).status == "acknowledged"


def test_migrations_are_recorded_and_applied_once(database: Database):
    for _ in range(2):  # opening again applies nothing
        OrderBook(database), Registry(database), AuditTrail(database)
    with database.read() as db:
        rows = db.execute("SELECT store, version FROM schema_migrations").fetchall()
    assert sorted((r["store"], r["version"]) for r in rows) == sorted(EXPECTED_VERSIONS)


def test_two_processes_migrating_one_empty_postgres_database_at_once_both_succeed(postgres):
    url = postgres.new_database()
    replicas = [PostgresDatabase(url) for _ in range(2)]  # each its own pool, as two processes have
    start, failures = threading.Barrier(2), []

    def open_stores(db: Database) -> None:
        start.wait()
        try:
            OrderBook(db), Registry(db), AuditTrail(db)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=open_stores, args=(db,)) for db in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    with replicas[0].read() as db:
        rows = db.execute("SELECT store, version FROM schema_migrations").fetchall()
    assert sorted((r["store"], r["version"]) for r in rows) == sorted(EXPECTED_VERSIONS)  # each once
    place(OrderBook(replicas[1]), 3)
    assert OrderBook(replicas[0]).count() == 3
    for db in replicas:
        db.close()


def test_a_registry_file_from_before_gains_its_columns(tmp_path):
    path = tmp_path / "orders.db"
    with sqlite3.connect(path) as raw:  # the registry as first released: no payload_hash, no submitted_by
        raw.execute("CREATE TABLE api_events (patient_id TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT"
                    " NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (patient_id, event_id))")
        raw.execute("INSERT INTO api_events VALUES ('pt-old', 'e-0', 'pain', '2026-01-01T00:00:00+00:00')")
    registry = Registry(path)
    assert registry.claim_event("pt-old", "e-0", "pain", "any") == "same"  # an unhashed row: the same event
    assert registry.claim_event("pt-old", "e-1", "pain", "h", "writer") == "new"
    assert registry.submitted_by("pt-old", "e-1") == "writer"


def test_a_postgres_url_opens_one_pool_per_process(postgres):
    url = postgres.new_database()
    db = open_database(url)
    try:
        assert open_database(url) is db and OrderBook(url).database is db and db.path is None
        assert "@" not in repr(db)  # the URL (and any password in it) stays out of logs
    finally:
        db.close()
    assert open_database(url) is not db  # closed: the next open makes a new pool
    open_database(url).close()
