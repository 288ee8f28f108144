"""The verdict, Jepsen-style: what the API acknowledged, checked against what is there afterwards.

Read through the API only (so any order-book backend is judged the same way), for each patient:

- **lost**: an acknowledged event (202/200) that is not in the pathway's timeline, applied or
  refused with its reason; **applied twice**: an event id in the timeline more than once;
- **orders**: each action of the pathway carried by one order of the patient's order Bundle;
  the actions themselves checked against the pure core (:func:`expected_actions` replays the
  enrollment and the applied events through :func:`pathway.decisions.decide`): a called-for
  action with no order is *missing*, an order no action accounts for (or an action twice) is a
  *duplicate*;
- **stuck**: the state not readable live, the pathway not running, or (from the workflow
  service) a workflow task failing or an activity still retrying.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from drill.load import Journal
from pathway.contract import Enrollment, parse_event
from pathway.decisions import decide
from pathway.facts import PatientFacts
from pathway.guideline import PathwayDefinition
from pathway.intake import clinical_rejection, day_of
from pathway.results import observe, take
from workflows.models import workflow_id_for


@dataclass
class PatientVerdict:
    """What was found for one patient."""

    patient_id: str
    acknowledged: set[str]
    applied: Counter[str] = field(default_factory=Counter)  # event id -> times in the timeline (applied or refused)
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    missing_orders: list[str] = field(default_factory=list)
    duplicated_orders: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)  # reasons; empty: not stuck


def comparable(action_id: str) -> str:
    """An action id with its day parts to two decimals: the timeline gives event days to three
    (about a minute and a half), and an id names the exact day of its cause."""
    parts = []
    for part in action_id.split(":"):
        try:
            parts.append(f"{round(float(part), 2):g}")
        except ValueError:
            parts.append(part)
    return ":".join(parts)


def expected_actions(defn: PathwayDefinition, enrollment: dict[str, Any], timeline: list[dict[str, Any]],
                     enrolled_at: datetime, now: float) -> Counter[str]:
    """The action ids the pure core calls for, given the events the pathway applied and its clock
    ``now``: decide at enrollment, after each event, and at ``now``, as the workflow does while no
    scheduled step falls due (a drill lasts minutes of a months-long pathway). An event's day is
    the workflow's (:func:`pathway.intake.admit`): from its ``observed_at``, which the drill always
    sends. The ids are :func:`comparable`, counted."""
    facts = PatientFacts(enrollment=Enrollment.model_validate(enrollment))
    ids: Counter[str] = Counter()

    def at(day: float) -> None:
        decision = decide(defn, facts, day)
        take(facts, decision.actions, day)
        for action in decision.actions:
            ids[comparable(action.id)] += 1
        facts.noted.extend(n.id for n in decision.notes)

    at(0.0)
    for entry in timeline:
        if entry["entry"] != "event":
            continue
        event = parse_event(entry["data"])
        observed = day_of(event.observed_at, enrolled_at) if event.observed_at else None
        day = max(0.0, observed) if observed is not None else entry["day"]
        if clinical_rejection(defn, facts, event, day, observed_day=observed) is None:
            observe(facts, day, event, defn=defn)
            at(day)
    at(now)
    return ids


async def _get(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    """GET with a few retries (the system is settling, not under test here)."""
    for attempt in range(5):
        try:
            response = await http.get(path, params=params)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5 * (attempt + 1))
    return None


async def order_ids(http: httpx.AsyncClient, patient_id: str) -> list[str] | None:
    """The ids of every order of the patient (all pages of the Bundle)."""
    bundle = await _get(http, "/v1/orders", patient=patient_id, _count=100)
    ids: list[str] = []
    while bundle is not None:
        ids.extend(e["resource"]["id"] for e in bundle.get("entry", []))
        next_url = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
        if next_url is None:
            return ids
        bundle = await _get(http, next_url)
    return None


async def workflow_troubles(client: Client, patient_id: str) -> list[str]:
    """What the workflow service says is wrong: a failing workflow task, an activity retrying."""
    try:
        desc = await client.get_workflow_handle(workflow_id_for(patient_id)).describe()
    except RPCError as err:
        return [f"describe: {err.status.name}"]
    raw = desc.raw_description
    troubles = []
    if raw.HasField("pending_workflow_task") and raw.pending_workflow_task.attempt > 1:
        troubles.append(f"workflow task on attempt {raw.pending_workflow_task.attempt}")
    troubles += [f"activity {a.activity_type.name} on attempt {a.attempt}" for a in raw.pending_activities
                 if a.attempt > 1]
    return troubles


async def judge_patient(http: httpx.AsyncClient, client: Client, defn: PathwayDefinition,
                        enrollment: dict[str, Any], acknowledged: set[str]) -> PatientVerdict:
    """One patient's verdict."""
    pid = str(enrollment["id"])
    verdict = PatientVerdict(pid, acknowledged)
    state = await _get(http, f"/v1/patients/{pid}")
    timeline = await _get(http, f"/v1/patients/{pid}/timeline")
    books = await order_ids(http, pid)
    if state is None or timeline is None or books is None:
        verdict.stuck.append("state, timeline or orders not readable")
        verdict.lost = sorted(acknowledged)
        return verdict
    if not state["live"] or not timeline["live"]:
        verdict.stuck.append("no worker answered for it")
    if state["status"] != "running":
        verdict.stuck.append(f"status {state['status']}")
    entries = timeline["entries"]
    for entry in entries:
        if entry["entry"] in ("event", "rejected") and entry["data"].get("event_id"):
            verdict.applied[entry["data"]["event_id"]] += 1
    verdict.lost = sorted(acknowledged - set(verdict.applied))
    verdict.twice = sorted(e for e, n in verdict.applied.items() if n > 1)
    verdict.stuck += await workflow_troubles(client, pid)

    actions = state["actions"] or []
    in_book = Counter(books)
    # Actions carried out: each with its order in the patient's Bundle.
    carried = Counter(comparable(a["id"]) for a in actions if a.get("order_id") in in_book)
    expected = expected_actions(defn, enrollment, entries, datetime.fromisoformat(state["enrolled_at"]),
                                state["day"] or 0.0)
    verdict.missing_orders = sorted((expected - carried).elements())
    referenced = {a.get("order_id") for a in actions}
    unaccounted = [o for o in in_book if o not in referenced]  # an order no action of the pathway placed
    doubled = [o for o, n in in_book.items() if n > 1]
    uncalled = sorted((carried - expected).elements())  # ordered more often than the decisions call for
    verdict.duplicated_orders = [*unaccounted, *doubled, *uncalled]
    return verdict


@dataclass
class Verdict:
    """Every patient's verdict, summed."""

    patients: list[PatientVerdict]
    server_errors: int
    unavailable_answers: int
    unanswered: int
    refused: int

    def figures(self) -> dict[str, Any]:
        """The counts result.json carries."""
        return {
            "patients": len(self.patients),
            "events_acknowledged": sum(len(p.acknowledged) for p in self.patients),
            "events_applied": sum(1 for p in self.patients for e in p.acknowledged if p.applied.get(e) == 1),
            "lost": sum(len(p.lost) for p in self.patients),
            "applied_twice": sum(len(p.twice) for p in self.patients),
            "duplicated_orders": sum(len(p.duplicated_orders) for p in self.patients),
            "missing_orders": sum(len(p.missing_orders) for p in self.patients),
            "stuck": sum(1 for p in self.patients if p.stuck),
            "server_errors": self.server_errors,
            "unavailable_answers": self.unavailable_answers,
            "unanswered_requests": self.unanswered,
            "refused_requests": self.refused,
        }

    def details(self) -> dict[str, Any]:
        """The patients with anything wrong, and what (ids only: synthetic patients, no PHI)."""
        return {p.patient_id: {k: v for k, v in (("lost", p.lost), ("applied_twice", p.twice),
                                                 ("missing_orders", p.missing_orders),
                                                 ("duplicated_orders", p.duplicated_orders), ("stuck", p.stuck)) if v}
                for p in self.patients if p.lost or p.twice or p.missing_orders or p.duplicated_orders or p.stuck}

    @property
    def passed(self) -> bool:
        f = self.figures()
        return not any(f[k] for k in ("lost", "applied_twice", "duplicated_orders", "missing_orders", "stuck",
                                      "server_errors", "unanswered_requests", "refused_requests"))


def acknowledged_events(journal: Journal) -> dict[str, set[str]]:
    """Patient -> the event ids the API acknowledged (202, or 200 for a repeat)."""
    found: dict[str, set[str]] = {}
    for sent in journal.sent:
        if sent.kind == "event" and sent.acknowledged and sent.event_id:
            found.setdefault(sent.patient_id, set()).add(sent.event_id)
    return found


def answer_counts(journal: Journal) -> tuple[int, int, int, int]:
    """5xx answers other than 503 (every attempt), 503 answers, requests never answered, and
    requests finally refused (a 4xx: the drill sends only valid requests)."""
    attempts = [s for sent in journal.sent for s in sent.statuses]
    server_errors = sum(1 for s in attempts if s is not None and s >= 500 and s != 503)
    unavailable = sum(1 for s in attempts if s == 503)
    unanswered = sum(1 for sent in journal.sent if sent.status is None or sent.status == 503)
    refused = sum(1 for sent in journal.sent if sent.status is not None and 400 <= sent.status < 500)
    return server_errors, unavailable, unanswered, refused
