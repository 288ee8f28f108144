"""Closed-loop results: which imaging orders still wait for a result, and which are overdue.

Pure. From decisions revision 6 a result fulfils, as it arrives, the newest open order it answers
that was placed by the day it was observed, and keeps it (:func:`observe`): the film taken after
the week-6 order answers that order, an earlier order never done stays the one without a result,
and the order book is told that very order. Before revision 6 a result fulfilled the oldest (first
in, first out), as the order book then did, so that one film never taken made every later order of
its kind wait for the next result and escalate. A result naming its order (``fulfils``) answers
that order alone. From revision 7 a film that no order waited for as it arrived is the result of
an order placed at its very instant, or of a scheduled one a pause held since the film's day; and
a film at the instant a scheduled step falls due is kept for that step's order even while an older
order is open (:func:`observe`, :func:`adopt`). An action id starts with its kind
(``order_radiograph:day-14``). From vcf-1.2 an urgent order (the enrollment MRI with a red flag)
is overdue sooner than a routine one. An MRI names no level: it is read for the region of the
order it fulfilled (:func:`enrolled_level_mri_day`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter
from typing import cast

from pathway.contract import Action, DxaEvent, Event, MriEvent, RadiographEvent
from pathway.facts import (
    SAME_INSTANT,
    SETTLE,
    Observation,
    PatientFacts,
    check_after,
    more_than,
    neuro_episodes,
    result_observations,
    standing_osteoporotic_mri_day,
)
from pathway.guideline import PathwayDefinition, Rule
from pathway.revision import REVISION

RESULT_EVENT_FOR: dict[str, type[MriEvent | RadiographEvent | DxaEvent]] = {
    "order_mri": MriEvent,
    "order_radiograph": RadiographEvent,
    "order_adjacent_fracture_screening": RadiographEvent,
    "order_dxa": DxaEvent,
}


@dataclass(frozen=True)
class OpenOrder:
    """An imaging order without its result yet."""

    action_id: str
    kind: str
    day: float


def open_orders(facts: PatientFacts) -> list[OpenOrder]:
    """Imaging and DXA orders that no result has answered yet, and whose task the performer has
    not rejected or failed (no result will come: its overdue clock stops). Read-only."""
    return facts.view("open_orders", _open_orders, of_actions=True, reads=RESULT_TYPES)


def observe(facts: PatientFacts, day: float, event: Event, revision: int = REVISION,
            defn: PathwayDefinition | None = None) -> Observation:
    """Append an accepted event observed on ``day``. From decisions revision 6 a result is matched as it
    arrives to the order it names (``fulfils``: none if that order does not wait for it) or else to the
    newest open order it answers placed by its day, and keeps that answer: an order placed later never
    takes it, and the order book is told that very order (``Observation.answers``). From revision 7 (with
    the patient's ``defn``) a film that would answer an order placed before its instant answers nothing
    as it arrives while a scheduled radiograph or screening due by then is not ordered yet (due at this
    instant, its alarm a second later; or held by a pause): it is that step's order's (:func:`adopt`)."""
    answers = None
    if revision >= 6 and type(event) in RESULT_TYPES:
        kinds = ORDERS_ANSWERED_BY_EVENT[type(event)]
        waiting = [o for o in open_orders(facts) if o.kind in kinds]
        named = getattr(event, "fulfils", None)
        if named is not None:  # the order the report names (a DiagnosticReport's basedOn), if it still waits
            answers = named if any(o.action_id == named for o in waiting) else ""
        else:
            placed = [o for o in waiting if o.day <= day + SAME_DAY_MARGIN]
            newest = max(placed, key=_BY_DAY_AND_ID) if placed else None
            answers = newest.action_id if newest else ""
            if isinstance(event, RadiographEvent) and newest is not None and newest.day < day - ACTION_DAY_ROUNDING \
                    and revision >= 7 and defn is not None and scheduled_film_due(defn, facts, day):
                answers = ""  # the film of the scheduled step due by now, not of an older order
    observation = Observation(day=day, event=event, answers=answers)
    facts.observations.append(observation)
    return observation


def scheduled_film_due(defn: PathwayDefinition, facts: PatientFacts, day: float) -> bool:
    """Whether a scheduled radiograph or adjacent-fracture screening was due by the instant ``day`` (within
    :data:`pathway.facts.SAME_INSTANT`) and is not ordered yet: due at this very instant (its step runs a
    second later), or held by a pause (ordered on resume). A screening skipped once and for all is not."""
    s, noted = defn.schedules, facts.noted_ids()
    ordered = radiograph_days_ordered(facts.taken)
    if any(d <= day + SAME_INSTANT and d not in ordered for d in s.radiograph_days.days):
        return True
    screening = "order_adjacent_fracture_screening:day-{}"
    return any(d <= day + SAME_INSTANT and screening.format(d) not in facts.taken
               and f"{screening.format(d)}:skipped" not in noted for d in s.screening_days.days)


def radiograph_days_ordered(action_ids: Iterable[str]) -> set[int]:
    """The scheduled days whose radiograph these actions ordered (one order may cover several: ``day-14+42``)."""
    prefix = "order_radiograph:day-"
    return {int(d) for action_id in action_ids if action_id.startswith(prefix)
            for d in action_id.removeprefix(prefix).split("+")}


def take(facts: PatientFacts, actions: Sequence[Action], now: float, revision: int = REVISION) -> list[Observation]:
    """Record a decision's actions as taken at ``now`` (as the workflow does once it has decided), and the
    results they adopt (:func:`adopt`), which are returned: the order book is told those too."""
    for action in actions:
        facts.taken[action.id] = action.day
    return adopt(facts, actions, now, revision)


def adopt(facts: PatientFacts, actions: Sequence[Action], now: float, revision: int = REVISION) -> list[Observation]:
    """From decisions revision 7: a radiograph that matched no order as it arrived is the result of an
    order placed now that it answers, if it was observed at the instant the order is placed — a
    scenario's film of day 14, and the week-2 radiograph ordered as its alarm rings a second later — or,
    for a scheduled radiograph or screening, since the day it was scheduled for (a film taken while a
    pause held its order, ordered on resume). It answers the order (its ``answers`` set to the order's
    action id; the newest such film), so the order is not left open to escalate, and the order book is
    told. Call it once the decision's actions are taken; returns the results adopted."""
    if revision < 7:
        return []
    films = [o for o in sorted(result_observations(facts).get(RadiographEvent, ()), key=_BY_DAY)
             if o.answers == "" and o.day <= now]
    adopted = []
    for action in actions:
        if not films or RESULT_EVENT_FOR.get(action.kind) is not RadiographEvent:
            continue
        scheduled = action.details.get("scheduled_days") or [action.details.get("scheduled_day")]
        since = now - ADOPT_WITHIN if scheduled[0] is None else min(scheduled) - SAME_INSTANT
        # A film naming an order (a report's basedOn) is only that order's: one placed after the film came.
        taken_since = [film for film in films if film.day >= since
                       and cast(RadiographEvent, film.event).fulfils in (None, action.id)]
        if taken_since:
            film = taken_since[-1]
            films.remove(film)
            film.answers = action.id
            adopted.append(film)
    return adopted


# A step's alarm rings a second after the instant it waits for, and an event within half a second of it is
# at it: a result observed at most this long before an order is placed was observed at the order's instant.
ADOPT_WITHIN = SETTLE + SAME_INSTANT
RESULT_TYPES = tuple(dict.fromkeys(RESULT_EVENT_FOR.values()))
# The order kinds each result class answers.
ORDERS_ANSWERED_BY_EVENT: dict[type, set[str]] = {
    t: {kind for kind, answered_by in RESULT_EVENT_FOR.items() if answered_by is t} for t in RESULT_TYPES}
# The same by the event's type, as the API, the order book and the workflow's inbox name it ("mri": ["order_mri"]).
ORDERS_ANSWERED_BY: dict[str, list[str]] = {
    t.model_fields["type"].default: [kind for kind, answered_by in RESULT_EVENT_FOR.items() if answered_by is t]
    for t in RESULT_TYPES}
RESULT_EVENT_TYPES = tuple(ORDERS_ANSWERED_BY)  # the event types that answer an order
# An order placed in the same instant as a result counts as placed by its day (days are floats).
SAME_DAY_MARGIN = 1e-6
# An action's day is rounded to three decimals: an order placed at a result's instant is within this of it.
ACTION_DAY_ROUNDING = 1e-3


def _orders_by_result(facts: PatientFacts) -> dict[type, list[tuple[float, str]]]:
    """The orders that a result answers, by the event class of that result: (day, action id), in the
    order taken. Actions are only ever added, so the new ones are read each time. Read-only."""
    memo, taken = facts.views().memo, facts.taken
    found = memo.get("orders_by_result")
    by_result: dict[type, list[tuple[float, str]]]
    read, by_result = found[2] if found is not None and found[0] is taken else (0, {})
    if read > len(taken):  # not the same actions any more: read them all again
        read, by_result = 0, {}
    if read < len(taken):
        answers = RESULT_EVENT_FOR.get
        for action_id, day in islice(taken.items(), read, None):
            answered_by = answers(action_id.partition(":")[0])
            if answered_by is not None:
                by_result.setdefault(answered_by, []).append((day, action_id))
        memo["orders_by_result"] = (taken, None, (len(taken), by_result))
    return by_result


def _open_orders(facts: PatientFacts) -> list[OpenOrder]:
    by_result = _orders_by_result(facts)
    if not by_result:
        return []
    results = result_observations(facts)
    still_open: list[OpenOrder] = []
    for result_type in RESULT_TYPES:
        open_ = _match(facts, result_type, results.get(result_type, []))
        still_open += [OpenOrder(a, a.split(":")[0], d) for d, a in open_]
    return sorted(still_open, key=_BY_DAY_AND_ID)


def _match(facts: PatientFacts, result_type: type, rows: list[Observation]) -> list[tuple[float, str]]:
    """The orders of one result class left open (day, action id) by its results (``rows``, in arrival
    order). A result that kept its answer as it arrived (:func:`observe`) answered that order; any other
    answers the oldest order placed by its day that is still open (first in, first out, as before
    revision 6). An order whose task the performer refused waits for none."""
    refused = facts.noted_ids()
    kept = {o.answers for o in rows if o.answers}
    queue = sorted(o for o in _orders_by_result(facts).get(result_type, ())
                   if refusal_note_id(o[1]) not in refused and o[1] not in kept)
    waiting: list[tuple[float, str]] = []
    next_order = 0
    for row in sorted(rows, key=_BY_DAY):  # stable: arrival order on ties, as the index keeps them
        if row.answers is not None:
            continue
        while next_order < len(queue) and queue[next_order][0] <= row.day:
            waiting.append(queue[next_order])
            next_order += 1
        if waiting:
            waiting.pop(0)
    return waiting + queue[next_order:]


_BY_DAY = attrgetter("day")


def enrolled_level_mri_day(defn: PathwayDefinition, facts: PatientFacts) -> float | None:
    """The standing MRI result saying osteoporotic for the enrolled fracture (decisions revision 6). A
    result that answered the MRI of a new fracture level in another region (a thoracic MRI for a new
    T12 fracture, a patient enrolled at L2) does not clear the enrolled fracture; but while the latest
    MRI of such a region is not osteoporotic either, a pathologic fracture is not ruled out there, and
    nothing stands (as any indeterminate result held PT and referrals before). As
    :func:`pathway.facts.standing_osteoporotic_mri_day` when every MRI ordered images the enrolled region."""
    if not other_region_mri(defn, facts):
        return standing_osteoporotic_mri_day(facts)
    return facts.view("enrolled_level_mri_day", lambda f: _enrolled_level_mri_day(defn, f), under=defn,
                      reads=(MriEvent,))


def other_region_mri(defn: PathwayDefinition, facts: PatientFacts) -> dict[float, str]:
    """The MRI results (by day) that answered the MRI of a new fracture level in another region than
    the enrolled fracture's, with that level (decisions revision 6). Read-only."""
    if len(_orders_by_result(facts).get(MriEvent, ())) <= 1:  # the enrollment MRI alone (the usual case)
        return _NONE_OTHER
    return facts.view("other_region_mri", lambda f: _other_region_mri(defn, f), under=defn, reads=(MriEvent,))


_NONE_OTHER: dict[float, str] = {}  # shared, read-only


def mri_new_levels(facts: PatientFacts) -> dict[float, str]:
    """The MRI results (by day) that answered the MRI ordered for a new fracture level, with that level
    (decisions revision 6 on; any region). Read-only."""
    if len(_orders_by_result(facts).get(MriEvent, ())) <= 1:  # the enrollment MRI alone (the usual case)
        return _NONE_OTHER
    return {day: level for day, _, level in _mri_answers(facts) if level}


def _mri_answers(facts: PatientFacts) -> list[tuple[float, MriEvent, str | None]]:
    """MRI results in day order, each with the new fracture level whose MRI order it fulfilled as it
    arrived ('' for the enrollment MRI's), or None when it fulfilled none or came before revision 6."""
    rows = sorted(result_observations(facts).get(MriEvent, []), key=_BY_DAY)
    return [(o.day, cast(MriEvent, o.event), o.answers.partition(":")[2] if o.answers else None) for o in rows]


def enrolled_mri_also_waited(facts: PatientFacts, day: float) -> bool:
    """Whether the enrolled fracture's MRI still waited for its result when the MRI result of ``day`` was taken
    as a new level's: the result named no level, so which MRI it was is the newest order's guess."""
    earlier = [o for o in result_observations(facts).get(MriEvent, []) if o.day < day]
    return "order_mri" in facts.taken and not any(o.answers == "order_mri" for o in earlier)


def _other_region_mri(defn: PathwayDefinition, facts: PatientFacts) -> dict[float, str]:
    region = defn.region("order_mri", facts.enrollment.fracture_level)
    return {day: level for day, _, level in _mri_answers(facts)
            if level and defn.region("order_mri", level) != region}


def _enrolled_level_mri_day(defn: PathwayDefinition, facts: PatientFacts) -> float | None:
    enrolled_region = defn.region("order_mri", facts.enrollment.fracture_level)
    # Per region (None: the enrolled fracture's): the day its latest run of results saying osteoporotic
    # began, None while its latest says otherwise; and whether it was ever held (another region's
    # result counts only from when it cleared its own hold).
    standing: dict[str | None, float | None] = {None: None}
    held: set[str | None] = set()
    for day, result, level in _mri_answers(facts):
        imaged = defn.region("order_mri", level) if level else enrolled_region
        if level is None:  # no order waited for it (a clinician's own MRI), or read before revision 6: every region
            regions: list[str | None] = list(standing)
        else:
            regions = [None if imaged == enrolled_region else imaged]
        for region in regions:
            if result.etiology != "osteoporotic":
                standing[region] = None
                held.add(region)
            elif standing.get(region) is None:
                standing[region] = day
    if any(day is None for day in standing.values()):
        return None
    return max(day for region, day in standing.items() if day is not None and (region is None or region in held))


_BY_DAY_AND_ID = attrgetter("day", "action_id")


def overdue_limit(defn: PathwayDefinition, facts: PatientFacts, order: OpenOrder,
                  revision: int = REVISION) -> tuple[Rule, float] | None:
    """How long an open order may wait for its result, and since when (None if the version sets no
    limit). The enrollment MRI is urgent with a red flag — and, from vcf-1.2, from the day a
    neurological deficit is reported (an urgent order escalates sooner); from decisions revision 6,
    so is the MRI of a new fracture level with a red flag (:func:`new_level_mri_urgent`)."""
    routine = defn.rules.result_overdue_days
    if defn.safety is not None and order.kind == "order_mri" and order.action_id != "order_mri" \
            and new_level_mri_urgent(defn, facts, revision):
        return defn.safety.rules.result_overdue_urgent_days, order.day
    if defn.safety is None or order.action_id != "order_mri":
        return (routine, order.day) if routine is not None else None
    urgent = defn.safety.rules.result_overdue_urgent_days
    if any(f in defn.urgent_mri_red_flags for f in facts.enrollment.red_flags):
        return urgent, order.day
    deficits = neuro_episodes(facts)
    return (urgent, max(order.day, deficits[0])) if deficits else ((routine, order.day) if routine else None)


def new_level_mri_urgent(defn: PathwayDefinition, facts: PatientFacts, revision: int = REVISION) -> bool:
    """Whether the MRI of a new fracture level is urgent (decisions revision 6, vcf-1.2 on): with a red
    flag for a pathologic fracture at enrollment, a new fracture may be the same disease."""
    return revision >= 6 and defn.safety is not None and \
        any(f in defn.urgent_mri_red_flags for f in facts.enrollment.red_flags)


@dataclass(frozen=True)
class Overdue:
    """An open order past its limit (or, watched after the end, that will be): the limit and the day
    its clock started."""

    order: OpenOrder
    rule: Rule
    since: float


def overdue_orders(defn: PathwayDefinition, facts: PatientFacts, now: float, revision: int = REVISION) -> list[Overdue]:
    """Open orders past their overdue limit."""
    found = []
    for order in open_orders(facts):
        limit = overdue_limit(defn, facts, order, revision)
        if limit is not None and more_than(now - limit[1], limit[0].value):
            found.append(Overdue(order, *limit))
    return found


def watched_after_completion(defn: PathwayDefinition, facts: PatientFacts, revision: int = REVISION) -> list[Overdue]:
    """Orders still waiting for their result when the pathway completes, not escalated yet, each
    with the limit its result will break (:func:`result_due_day`): the 12-month screening, ordered
    on the day the pathway completes, is always one. Nobody would hear of a result that never
    comes, so they are watched after the end (escalated then if still without one)."""
    noted = facts.noted_ids()
    watched = []
    for order in open_orders(facts):
        limit = overdue_limit(defn, facts, order, revision)
        if limit is not None and overdue_note_id(order.action_id) not in noted:
            watched.append(Overdue(order, *limit))
    return watched


def result_due_day(overdue: Overdue) -> float:
    """The instant at which an open order's result is overdue (more than its limit since its clock started)."""
    return check_after(overdue.since, overdue.rule.value)


def overdue_note_id(action_id: str) -> str:
    """The decision note that records an order's overdue result, escalated (once per order)."""
    return f"overdue:{action_id}"


def overdue_checks(defn: PathwayDefinition, facts: PatientFacts, now: float, revision: int = REVISION) -> list[float]:
    """Future instants at which an open order becomes overdue."""
    due = []
    for order in open_orders(facts):
        limit = overdue_limit(defn, facts, order, revision)
        if limit is not None:
            due.append(check_after(limit[1], limit[0].value))
    return [d for d in due if d > now]


# --- Refused orders: a performer rejected or failed the task of an order ------------------------

REFUSAL_NOTE = "task-refused:"
REFUSAL_CITATION = ("Guideline: Monitoring and Follow-up; care teams: closed-loop orders, every order tracked "
                    "from request to result (clinical-reference §5)")


@dataclass(frozen=True)
class RefusalAlert:
    """What the care team is told when an order will not be carried out."""

    title: str
    rationale: str
    citation: str = REFUSAL_CITATION


def refusal_note_id(action_id: str) -> str:
    """The decision note that records an order's refusal (once per order)."""
    return REFUSAL_NOTE + action_id


def refusal_alert(kind: str, status: str, reason: str, day: float, title: str = "") -> RefusalAlert | None:
    """Whether a rejected or failed order needs the care team: an imaging order (its result will
    not come) or a referral (the patient will not be seen) does; anything else is only recorded.
    ``title``: the order's name in the clinic's words (its kind where there is none)."""
    if status not in ("rejected", "failed"):
        return None
    if kind in RESULT_EVENT_FOR:
        what = "imaging order"
        consequence = "no result will come for it; its overdue-result clock is stopped"
    elif kind.startswith("refer_"):
        what = "referral"
        consequence = "the patient will not be seen through it"
    else:
        return None
    why = f" ({reason})" if reason else ""
    name = title or kind
    return RefusalAlert(
        title=f"Order {status}: {name}",
        rationale=(f"The {what} \"{name}\" was {status} by its performer on day {day:g}{why}: {consequence}. "
                   "The care team re-orders it elsewhere or decides otherwise."))
