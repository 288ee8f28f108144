"""Results that arrive after a pathway has ended (withdrawn, completed, exited).

The workflow is closed, but the care team still owns the pathway's open orders: an imaging or
DXA result fulfils the newest open order it answers placed by its day (as the pathway's decisions
match them from revision 6); an MRI saying malignant or infection raises an
urgent care-team task; a radiograph naming a new fracture level (the 12-month screening's result,
say) one too, urgent with an enrollment red flag that makes an MRI urgent and routine otherwise;
an indeterminate MRI, or a radiograph showing the deformity progressed since enrollment, a routine
one — so a result never reaches no one. Used by the HTTP API, by ``vcf simulate`` and by the
workflow's activity for a result still queued when it ends; idempotent per result key.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from activities.database import as_stored
from activities.order_book import OrderBook, order_key
from activities.order_model import Order
from pathway.builder import readable_days
from pathway.contract import DxaEvent, Event, MriEvent, RadiographEvent
from pathway.facts import height_loss_progressed
from pathway.guideline import load_definition
from pathway.responses import pathologic_finding
from pathway.results import ORDERS_ANSWERED_BY
from workflows.models import DecisionNote

AFTER_END_KIND = "escalate_result_after_end"
PATHOLOGIC = ("malignant", "infection")
# A result after the end that only fulfils its order rests on the closed loop and the hand-over.
FULFILLED_CITATION = ("Guideline: Monitoring and Follow-up; care teams: closed-loop orders (clinical-reference §5); "
                      "safety rules: results after the end fulfil the open orders (rule 6)")


@dataclass(frozen=True)
class ResultAfterEnd:
    """What a result after the end did: the order it fulfilled and the task it raised, if any."""

    fulfilled: list[str]
    escalation: str | None = None
    priority: str = "urgent"  # the task's
    citation: str = FULFILLED_CITATION  # the task's, when it raised one
    fulfilled_actions: tuple[str, ...] = ()  # the action ids of the orders fulfilled (order_mri, ...)

    def summary(self, event: Event, status: str) -> str:
        """One line for a timeline note or a receipt."""
        named = f" ({', '.join(self.fulfilled_actions)})" if self.fulfilled_actions else ""
        orders = ", ".join(self.fulfilled)
        text = (f"{event.type} result after the pathway ended ({status}): {finding_of(event)}; "
                f"fulfils order {orders}{named}")
        if self.escalation:
            text += f"; {self.priority} care-team task {self.escalation} raised"
        return text + "."


# How an order fulfilled after the end says so (the reason its completion was written with): the result's
# type, its day, what it found (from this release on) and its key — the API's event id (any text, brackets
# too: it runs to the last "]"), or the scenario's.
_FULFILLED_AFTER_END = re.compile(
    r"(?P<type>[a-z_]+) result after the pathway ended, day (?P<day>[0-9.e+-]+)(?:: (?P<finding>[^\[]*))? "
    r"\[(?P<key>.*)\]", re.DOTALL)


def finding_of(event: Event) -> str:
    """What a result says, in a few words ("malignant", "height loss 27%, new fracture at T12")."""
    if isinstance(event, MriEvent):
        return event.etiology
    if isinstance(event, RadiographEvent):
        return ", ".join([f"height loss {event.height_loss_pct:g}%",
                          *([f"kyphosis {event.kyphosis_deg:g} degrees"] if event.kyphosis_deg is not None else []),
                          *([f"new fracture at {event.new_fracture_level}"] if event.new_fracture_level else [])])
    if isinstance(event, DxaEvent):
        return f"T-score {event.t_score:g}"
    return event.type


@dataclass(frozen=True)
class RecordedAfterEnd:
    """A result taken after the end, read back from the order book: the order it fulfilled and the task it
    raised, if any (what the timeline and the state show, since the ended workflow never saw it)."""

    day: float
    event_type: str
    result_key: str
    finding: str | None  # None for one recorded before the finding was kept
    order: Order
    task: Order | None
    nth: int = 1  # the second result of one type and day is noted as its own (after_end:TYPE:DAY:2)
    recorded_at: datetime | None = None  # when it was recorded (None: before the order's changes were kept)

    def note(self) -> DecisionNote:
        """The decision note the state, the timeline and ``vcf simulate`` list it as (``after_end:TYPE:DAY``):
        what came, what it fulfilled, what it raised."""
        found = f": {self.finding}" if self.finding else ""
        named = f"{self.order.action_id}, " if self.order.action_id != self.order.kind else ""
        text = (f"{self.event_type} result after the pathway ended{found}; fulfilled {self.order.kind} "
                f"({named}order {self.order.id})")
        if self.task is not None:
            text += f"; {self.task.priority} care-team task {self.task.id}: {self.task.rationale}"
        suffix = f":{self.nth}" if self.nth > 1 else ""
        return DecisionNote(day=self.day, id=f"after_end:{self.event_type}:{self.day:g}{suffix}",
                            text=readable_days(text), citation=self.task.citation if self.task else FULFILLED_CITATION)


def recorded_after_end(book: OrderBook, workflow_id: str, result_key: str | None = None,
                       event_type: str | None = None, orders: Sequence[Order] | None = None) -> list[RecordedAfterEnd]:
    """The results taken after the end of one pathway, in day order and, within a day, in the order they
    were recorded (only the one recorded under ``result_key`` as ``event_type``, if given), read from the
    change that completed each order (``orders``: the pathway's, when the caller has read them already)."""
    by_id = {o.id: o for o in (book.list(workflow_id=workflow_id) if orders is None else orders)}
    completions = book.completions(workflow_id)  # in the order they were written
    tasks = {o.action_id: o for o in by_id.values() if o.kind == AFTER_END_KIND}
    wanted = as_stored(result_key) if result_key is not None else None
    # Orders completed before their changes were kept have only their reason to go by, after the others.
    reasons = [*((i, note, at) for i, (note, at) in completions.items()),
               *((i, o.status_reason or "", None) for i, o in by_id.items() if i not in completions)]
    found, seen = [], Counter[tuple[str, float]]()
    for order_id, reason, at in reasons:
        match = _FULFILLED_AFTER_END.fullmatch(reason)
        if match is None or order_id not in by_id:
            continue
        day = float(match["day"])
        seen[match["type"], day] += 1
        if (wanted is None or match["key"] == wanted) and (event_type is None or match["type"] == event_type):
            found.append(RecordedAfterEnd(day, match["type"], match["key"], match["finding"], by_id[order_id],
                                          tasks.get(f"after-end:{match['key']}"), seen[match["type"], day], at))
    return sorted(found, key=lambda r: r.day)


def recorded_result_after_end(book: OrderBook, *, workflow_id: str, event: Event,
                              result_key: str) -> ResultAfterEnd | None:
    """What a result after the end recorded under ``result_key`` did, without doing it again (None if it was
    not taken as one): the answer to a client that sends it again, after a timeout, say."""
    fulfilled = [r.order for r in recorded_after_end(book, workflow_id, result_key, event.type)]
    if not fulfilled:
        return None
    task = book.get_by_key(order_key(workflow_id, f"after-end:{result_key}"))
    actions = tuple(o.action_id for o in fulfilled)
    if task is None:
        return ResultAfterEnd([o.id for o in fulfilled], fulfilled_actions=actions)
    return ResultAfterEnd([o.id for o in fulfilled], task.id, task.priority, task.citation, actions)


def takes_result_after_end(event: Event) -> bool:
    """Whether this event is a result that may still fulfil an order after the end."""
    return event.type in ORDERS_ANSWERED_BY


def record_result_after_end(book: OrderBook, *, workflow_id: str, patient_id: str, event: Event, day: float,
                            result_key: str, status: str, enrolled_level: str | None = None,
                            enrolled_height_loss: float | None = None,
                            red_flags: Sequence[str] = ()) -> ResultAfterEnd:
    """Fulfil the newest open order the result answers (placed by its day); raise a care-team task for a pathologic MRI
    or a new fracture level (one other than ``enrolled_level``; urgent with one of the enrollment's ``red_flags``
    that make an MRI urgent). Nothing is fulfilled (an empty ``fulfilled``) when no open order answers the result."""
    reason = f"{event.type} result after the pathway ended, day {day:g}: {finding_of(event)} [{result_key}]"
    done = [r.order.id for r in recorded_after_end(book, workflow_id, result_key, event.type)]
    named = getattr(event, "fulfils", None)  # the order a report names, else the newest placed by its day
    fulfilled = done or book.close_open(workflow_id, ORDERS_ANSWERED_BY[event.type], "completed", reason,
                                        limit=1, awaiting_result=True, placed_by=None if named else day,
                                        action_id=named)
    task = _care_team_task(event, day, status, enrolled_level, enrolled_height_loss, red_flags) if fulfilled else None
    actions = tuple(order.action_id for order in map(book.get, fulfilled) if order is not None)
    if task is None:
        return ResultAfterEnd(fulfilled, fulfilled_actions=actions)
    action_id = f"after-end:{result_key}"
    placed, _ = book.place(
        idempotency_key=order_key(workflow_id, action_id), patient_id=patient_id, workflow_id=workflow_id,
        action_id=action_id, kind=AFTER_END_KIND, resource="Task", priority=task.priority, day=day,
        title=task.title, rationale=readable_days(task.rationale), citation=task.citation,
        details={"order_id": fulfilled[0], **task.details, "pathway_status": status}, codes=[])
    return ResultAfterEnd(fulfilled, placed.id, task.priority, task.citation, actions)


def _height_loss_grown(height: float, first: float | None) -> str:
    """The progression of the deformity a film after the end shows against the enrollment's height loss,
    by the current guideline's relative rule (every release has the same), or ''."""
    if first is None:
        return ""
    relative = load_definition().rules.progression_relative_height_loss.value
    if height_loss_progressed(height, first, relative):
        return f"height loss {height:g}% vs {first:g}% at enrollment, grown by >= {relative:.0%} of the first value"
    return ""


class _CareTeamTask(NamedTuple):
    title: str
    rationale: str
    citation: str
    priority: str
    details: dict[str, str]


def _care_team_task(event: Event, day: float, status: str, enrolled_level: str | None,
                    enrolled_height_loss: float | None, red_flags: Sequence[str] = ()) -> _CareTeamTask | None:
    """The task a result after the end calls for, or None."""
    if isinstance(event, MriEvent) and event.etiology == "indeterminate":
        return _CareTeamTask("MRI after the pathway ended is indeterminate",
                f"MRI on day {day:g}, after the pathway ended ({status}), is indeterminate: a pathologic fracture is "
                "not ruled out; the care team reviews it (safety rule 4) and decides on PT and any referral.",
                "Guideline: Important Clinical Pitfalls / Ruling out pathologic fracture (ref. 3); "
                "safety rules: an indeterminate MRI asks for a clinician", "routine", {"etiology": "indeterminate"})
    if isinstance(event, RadiographEvent) and not (event.new_fracture_level
                                                   and event.new_fracture_level != enrolled_level):
        grown = _height_loss_grown(event.height_loss_pct, enrolled_height_loss)
        if grown:
            return _CareTeamTask("Radiograph after the pathway ended shows progressive deformity",
                    f"Radiograph on day {day:g}, after the pathway ended ({status}): {grown}; the care team reviews "
                    "the deformity (vertebral augmentation is no longer the pathway's to suggest).",
                    "Guideline: Monitoring and Follow-up / Evaluate for progressive deformity; safety rules: "
                    "results after the end (rule 6)", "routine", {"height_loss_pct": f"{event.height_loss_pct:g}"})
    if isinstance(event, MriEvent) and event.etiology in PATHOLOGIC:
        etiology, finding = event.etiology, pathologic_finding(event.etiology)
        stop_day = load_definition().rules.calcitonin_stop_day.value  # no course runs past it
        return _CareTeamTask(f"Urgent: MRI after the pathway ended shows {finding}",
                f"MRI on day {day:g}, after the pathway ended ({status}), shows {finding}: the care "
                "team arranges the pathologic work-up (oncology or infectious disease, spine surgery)"
                + (", stops calcitonin if it still runs (a pathologic fracture stops it)," if day <= stop_day else "")
                + " and reviews the bisphosphonate and analgesics.",
                "Guideline: Important Clinical Pitfalls / Ruling out pathologic fracture (ref. 3); "
                "safety rules: results after the end (rule 6)", "urgent", {"etiology": etiology})
    new = event.new_fracture_level if isinstance(event, RadiographEvent) else None
    if new and new != enrolled_level:
        # As in the pathway (decisions revision 6): with such a red flag the new fracture may be the same disease.
        urgent = [flag for flag in red_flags if flag in load_definition().urgent_mri_red_flags]
        return _CareTeamTask(("Urgent: r" if urgent else "R") + "adiograph after the pathway ended shows a new "
                             f"vertebral fracture at {new}",
                f"Radiograph on day {day:g}, after the pathway ended ({status}), shows a new fracture at {new}"
                + (f" (enrolled: {enrolled_level})" if enrolled_level else "")
                + ": the care team arranges " + ("an urgent MRI of the new level (red flag(s) at enrollment: "
                                                 + ", ".join(flag.replace("_", " ") for flag in urgent)
                                                 + ": it may be the same disease)" if urgent
                                                 else "an MRI of the new level")
                + " and reviews the osteoporosis treatment.",
                "Guideline: Important Clinical Pitfalls / Monitoring for adjacent level fractures; "
                "safety rules: results after the end (rule 6)", "urgent" if urgent else "routine",
                {"new_fracture_level": new, **({"red_flags": ", ".join(urgent)} if urgent else {})})
    return None
