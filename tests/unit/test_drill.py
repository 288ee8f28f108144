"""The drill's pure parts: its seeded schedule and load, the verdict's replay, the flood's judge."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

from drill.chaos import PostgresOutage, SqliteOutage, outage_for, schedule
from drill.flood import error_shape_problem
from drill.load import patient_scripts
from drill.verdict import comparable, expected_actions
from pathway.contract import Enrollment, parse_event
from pathway.guideline import load_definition


def test_the_schedule_is_the_same_for_the_same_seed_and_does_what_it_was_asked():
    steps = schedule(7, span=100, kills=20, server_restarts=2, outage_s=15)
    assert steps == schedule(7, span=100, kills=20, server_restarts=2, outage_s=15)
    assert steps != schedule(8, span=100, kills=20, server_restarts=2, outage_s=15)
    assert Counter(s.what for s in steps) == {"kill": 20, "restart_server": 2, "outage": 1}
    assert all(0 < s.at < 100 for s in steps) and [s.at for s in steps] == sorted(s.at for s in steps)
    big = [s for s in steps if s.what != "kill"]  # restarts and the outage never overlap
    assert all(a.at + a.down_for < b.at for a, b in itertools.pairwise(big))


def test_the_load_is_seeded_and_every_request_is_valid_with_its_own_event_id():
    scripts = patient_scripts(5, 4, seed=3)
    assert scripts == patient_scripts(5, 4, seed=3)
    ids = [e["event_id"] for s in scripts for e in s.events]
    assert len(ids) == len(set(ids)) == 20
    for script in scripts:
        Enrollment.model_validate(script.enrollment)
        for event in script.events:
            parse_event(event)


def test_comparable_ids_keep_the_cause_and_the_day_to_two_decimals():
    assert comparable("order_spine_xray:flare:0.000327543") == "order_spine_xray:flare:0"
    assert comparable("review:side_effect:12.3456:2") == "review:side_effect:12.35:2"
    assert comparable("order_mri") == "order_mri"


def test_the_replay_calls_for_the_enrollment_orders_and_an_events_response():
    enrollment = {"id": "pt-d1", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8,
                  "onset_days_before_enrollment": 0}
    enrolled_at = datetime(2026, 1, 1, tzinfo=UTC)
    at_enrollment = expected_actions(load_definition(), enrollment, [], enrolled_at, 0.001)
    assert at_enrollment and all(n == 1 for n in at_enrollment.values())
    side_effect = {"entry": "event", "day": 0.002, "data": {
        "type": "side_effect", "drug": "calcitonin", "effect": "nausea", "event_id": "e1",
        "observed_at": "2026-01-01T00:02:00Z"}}
    after = expected_actions(load_definition(), enrollment, [side_effect], enrolled_at, 0.003)
    assert after - at_enrollment == Counter({"request_clinician_review:side_effect:0": 1})


def test_an_error_answer_must_be_the_error_json_naming_the_field():
    assert error_shape_problem(422, {"error": "invalid event", "detail": ["nrs: must be 0-10"]}) is None
    assert error_shape_problem(404, {"error": "not found", "detail": []}) is None
    assert error_shape_problem(422, {"error": "invalid event", "detail": []}) == "no detail"
    assert error_shape_problem(400, {"error": "bad", "detail": ["something went wrong"]}) is not None
    assert error_shape_problem(409, "conflict") == "not the error JSON"


def test_a_postgresql_order_book_is_taken_away_as_postgresql_not_as_sqlite(tmp_path):
    assert type(outage_for(None, tmp_path / "orders.db")) is SqliteOutage
    outage = outage_for("postgresql://vcf@127.0.0.1:5432/vcf", tmp_path / "orders.db")
    assert isinstance(outage, PostgresOutage) and outage.url == "postgresql://vcf@127.0.0.1:5432/vcf"
