"""What is known about a patient, and the clinical views derived from it.

Pure functions over the enrollment and the accepted observations (each with its pathway day):
pain history, bed-bound spells, progression of the deformity, pain flares, pause state.
No Temporal, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from operator import itemgetter
from typing import Any, TypeVar

from pydantic import BaseModel, Field, PrivateAttr

from pathway.contract import (
    ClinicianEvent,
    DxaEvent,
    Enrollment,
    Event,
    MobilityEvent,
    MriEvent,
    NeuroEvent,
    PainEvent,
    PulmonaryEvent,
    RadiographEvent,
)
from pathway.guideline import PathwayDefinition

# "More than N days" is checked two seconds past the boundary: a report landing at the boundary
# is in time, and the check stays clear of steps due at that instant (their alarms ring a second
# after it) and of a scenario's read-out just after until_day.
GRACE = 2 / 86400
# The workflow's alarms ring a second after the instant they wait for, so an event landing exactly
# then is applied first; a scenario is read 1.5 s after until_day, so steps due at that instant have
# run and "more than N days" checks (GRACE past N) have not. In seconds, and in days for the engines
# that drive the pure core on a simulated clock (the unit walk, the cohort, the bench).
ALARM_SETTLE_SECONDS = 1.0
READ_MARGIN_SECONDS = 1.5
SETTLE = ALARM_SETTLE_SECONDS / 86400
READ_MARGIN = READ_MARGIN_SECONDS / 86400

# From decisions revision 4 a step scheduled for an instant waits until it has passed; an event decided
# within half a second of that instant is at it (the workflow decides an event a few milliseconds after it
# was sent; the step's alarm rings a second after the instant).
SAME_INSTANT = 0.5 / 86400


def more_than(elapsed: float, days: float) -> bool:
    """Whether ``elapsed`` days are more than ``days`` (at the pathway's two-second resolution)."""
    return elapsed > days + GRACE


def check_after(start: float, days: float) -> float:
    """The instant at which "more than ``days`` since ``start``" first holds."""
    return start + days + GRACE
# Measurements are compared with this slack, so that binary floating point never moves a boundary
# (e.g. 17% -> 20.4% is exactly a 20% relative rise, though 20.4 - 17 < 0.2 * 17 in floats).
TOLERANCE = 1e-9
E = TypeVar("E")
V = TypeVar("V")


class Observation(BaseModel):
    """An accepted event and the pathway day it was observed on; for a result (decisions revision 6
    on), the order it fulfilled as it arrived (:func:`pathway.results.observe`)."""

    day: float
    event: Event
    answers: str | None = Field(None, description="The action id of the order this result fulfilled when it "
                                                  "arrived ('' if none was open); None: matched oldest first")


class PatientFacts(BaseModel):
    """Everything the decisions read: enrollment, observations, and what was already done.

    Observations are only ever appended; the views of them are indexed as they arrive (by event
    class, in day order) instead of re-scanned on every decision.
    """

    enrollment: Enrollment
    observations: list[Observation] = Field(default_factory=list)
    taken: dict[str, float] = Field(default_factory=dict, description="action id -> pathway day")
    noted: list[str] = Field(default_factory=list, description="ids of decision notes recorded")
    _views: _Views = PrivateAttr(default_factory=lambda: _Views())

    def of(self, kind: type[E]) -> list[tuple[float, E]]:
        """Observations of one event class, in day order (arrival order on ties). Read-only."""
        views: _Views = self.__pydantic_private__["_views"]  # type: ignore[index]  # views() inlined: hot
        observations = self.observations
        if views.count != len(observations) or views.source is not observations:
            views.catch_up(self)
        return views.index.get(kind, _NO_ROWS)

    def view(self, name: str, derive: Callable[[PatientFacts], V], under: object = None,
             of_actions: bool = False, reads: tuple[type, ...] | None = None) -> V:
        """A view derived from the observations (``reads``: of these event classes only; ``of_actions``:
        and the actions and notes; ``under``: and e.g. the definition), kept until one of those
        changes. Read-only."""
        views: _Views = self.__pydantic_private__["_views"]  # type: ignore[index]  # views() inlined: hot
        observations = self.observations
        if views.count != len(observations) or views.source is not observations:
            views.catch_up(self)
        count = views.count
        taken, noted = (len(self.taken), len(self.noted)) if of_actions else (0, 0)
        # [under, the view, observations when last found current, actions, notes]: still current while
        # none of the classes it reads has gained an observation since (the usual check is one set test)
        found = views.memo.get(name)
        if found is not None and found[0] is under and found[3] == taken and found[4] == noted and (
                (checked := found[2]) == count or (reads is not None and (
                    views.arrived[1].isdisjoint(reads) if views.arrived[0] == checked  # changed_since, inlined
                    else not views.changed_since(checked, reads)))):
            found[2] = count
            return found[1]  # type: ignore[no-any-return]
        value = derive(self)
        views.memo[name] = [under, value, count, taken, noted]
        return value

    def noted_ids(self) -> set[str]:
        """The ids of the decision notes recorded, as a set. Read-only."""
        # Straight to pydantic's private store: its attribute hook costs more than the lookup.
        views: _Views = self.__pydantic_private__["_views"]  # type: ignore[index]
        noted = self.noted
        if views.noted_list is noted and views.noted_count == len(noted):
            return views.noted  # the usual case: nothing noted since the last read
        return views.noted_ids(self)

    def views(self) -> _Views:
        """The index and caches, caught up with the observations (for :mod:`pathway.quiet`)."""
        views: _Views = self.__pydantic_private__["_views"]  # type: ignore[index]  # inline: every view asks
        observations = self.observations
        if views.count != len(observations) or views.source is not observations:
            views.catch_up(self)
        return views


class _Views:
    """The observations indexed by event class as they arrive, views memoised over them, the ids
    noted so far as a set, and the steps last found quiet (:mod:`pathway.quiet`)."""

    __slots__ = ("arrived", "changed", "count", "index", "kept", "memo", "noted", "noted_count", "noted_list",
                 "quiet", "source")

    def __init__(self) -> None:
        self.index: dict[type, list[tuple[float, Any]]] = {}
        self.source: list[Observation] | None = None  # the observations indexed (a new list starts afresh)
        self.count = 0  # how many of them
        self.changed: dict[type, int] = {}  # event class -> how many observations were indexed at its last
        self.kept: dict[str, Any] = {}  # the views of :func:`kept`, derived when read after an arrival
        # The last observations indexed together: how many were indexed before them, their classes.
        self.arrived: tuple[int, set[type]] = (0, set())
        self.memo: dict[str, Any] = {}  # name -> what the view kept (see PatientFacts.view, folded)
        self.noted: set[str] = set()
        self.noted_list: list[str] | None = None  # the notes read into ``noted``, and how many of them
        self.noted_count = 0
        self.quiet: dict[str, Any] = {}

    def catch_up(self, facts: PatientFacts) -> dict[type, list[tuple[float, Any]]]:
        observations, count = facts.observations, self.count
        if count == len(observations) and self.source is observations:
            return self.index
        fresh = self.source is not observations or count > len(observations)
        if fresh:
            self.index, self.changed, self.memo, self.quiet, count = {}, {}, {}, {}, 0
        arrived: set[type] = set()
        self.arrived = (count, arrived)
        for o in observations[count:]:
            count += 1
            kind = type(o.event)
            insort(self.index.setdefault(kind, []), (o.day, o.event), key=_by_day)
            self.changed[kind] = count
            arrived.add(kind)
        self.source, self.count = observations, count
        # The views that read an arrived class are derived again when next read (many never are).
        if fresh:
            self.kept = {}
        else:
            kept = self.kept
            for kind in arrived:
                for name in _KEPT_BY_CLASS.get(kind, ()):
                    kept.pop(name, None)
        return self.index

    def changed_since(self, seen: int, kinds: tuple[type, ...]) -> bool:
        """Whether one of these event classes gained an observation after the first ``seen``."""
        if self.count == seen:
            return False
        if self.arrived[0] == seen:  # the usual case: since the last decision, the observations just indexed
            return not self.arrived[1].isdisjoint(kinds)
        changed = self.changed
        for kind in kinds:  # noqa: SIM110 - a generator costs more than the check on this path
            if changed.get(kind, 0) > seen:
                return True
        return False

    def noted_ids(self, facts: PatientFacts) -> set[str]:
        """The ids of ``facts.noted`` as a set, kept up to date as notes are appended."""
        noted, count = facts.noted, self.noted_count
        if count != len(noted) or self.noted_list is not noted:
            if self.noted_list is not noted or count > len(noted):
                self.noted, count = set(), 0
            self.noted.update(noted[count:])
            self.noted_list, self.noted_count = noted, len(noted)
        return self.noted


_by_day = itemgetter(0)  # of a (day, ...) row
_NO_ROWS: list[tuple[float, Any]] = []  # the rows of a class not observed yet (read-only: shared)
_STALE: Any = object()  # a kept view not derived since its classes last gained an observation


# The views of :func:`kept` each event class's arrival makes stale, by name.
_KEPT_BY_CLASS: dict[type, list[str]] = {}


def kept(*reads: type) -> Callable[[Callable[[PatientFacts], V]], Callable[[PatientFacts], V]]:
    """A view of the observations of these event classes, derived on the first read after one of them
    arrives and kept until the next (reading it costs a lookup); results are read-only."""
    def mark(derive: Callable[[PatientFacts], V]) -> Callable[[PatientFacts], V]:
        name = derive.__qualname__
        for kind in reads:
            _KEPT_BY_CLASS.setdefault(kind, []).append(name)

        @wraps(derive)
        def view(facts: PatientFacts) -> V:
            # PatientFacts.views inlined: every decision reads a dozen of these.
            views: _Views = facts.__pydantic_private__["_views"]  # type: ignore[index]
            observations = facts.observations
            if views.count != len(observations) or views.source is not observations:
                views.catch_up(facts)
            found: V = views.kept.get(name, _STALE)
            if found is _STALE:
                found = views.kept[name] = derive(facts)
            return found
        return view
    return mark


def memoised_under(*reads: type) -> Callable[[Callable[[PathwayDefinition, PatientFacts], V]],
                                             Callable[[PathwayDefinition, PatientFacts], V]]:
    """A view of the observations of these event classes under a definition, derived once per
    change of either."""
    def mark(derive: Callable[[PathwayDefinition, PatientFacts], V]) -> Callable[[PathwayDefinition, PatientFacts], V]:
        name = derive.__qualname__

        @wraps(derive)
        def view(defn: PathwayDefinition, facts: PatientFacts) -> V:
            return facts.view(name, lambda f: derive(defn, f), under=defn, reads=reads)
        return view
    return mark


def folded(facts: PatientFacts, name: str, kind: type[E], start: Callable[[], V],
           step: Callable[[V, float, E], None], under: object = None) -> V:
    """A view folded over the observations of one event class in day order: ``step(state, day,
    event)`` for each observation after ``start()``. Observations that arrive after the last one
    in day order (the usual case) are folded into the kept state; one that lands earlier refolds
    from the start. Read-only."""
    views: _Views = facts.__pydantic_private__["_views"]  # type: ignore[index]  # views() inlined: hot
    observations = facts.observations
    if views.count != len(observations) or views.source is not observations:
        views.catch_up(facts)
    rows = views.index.get(kind, _NO_ROWS)
    # [observations folded, the last of them, the state, under], updated in place
    found = views.memo.get(name)
    if found is None or found[3] is not under:
        found = views.memo[name] = [0, None, start(), under]
    count = found[0]
    if count == len(rows) and (not count or rows[count - 1] is found[1]):
        return found[2]  # type: ignore[no-any-return]  # nothing new since the last fold
    if count and (count > len(rows) or rows[count - 1] is not found[1]):
        count, found[2] = 0, start()  # one landed earlier in day order: fold again from the start
    state: V = found[2]
    for day, event in rows[count:]:
        step(state, day, event)
    found[0], found[1] = len(rows), rows[-1] if rows else None
    return state


def pain_reports(facts: PatientFacts) -> list[tuple[float, int]]:
    """Pain scores by day; the enrollment score is the report at day 0. Read-only."""
    return folded(facts, "pain_reports", PainEvent, lambda: [(0.0, facts.enrollment.pain_nrs)], _add_report)


def _add_report(reports: list[tuple[float, int]], day: float, event: PainEvent) -> None:
    reports.append((day, event.nrs))


def latest_pain(facts: PatientFacts) -> tuple[float, int]:
    """The most recent pain report (by observation day)."""
    # The last of pain_reports, read from the index: no fold needed for the last row alone.
    rows = facts.of(PainEvent)
    return (rows[-1][0], rows[-1][1].nrs) if rows else (0.0, facts.enrollment.pain_nrs)


def first_pain_report(facts: PatientFacts, name: str, matches: Callable[[float, int], bool],
                      under: object) -> tuple[float, int] | None:
    """The first pain report after enrollment (by day) for which ``matches(day, nrs)`` holds, kept as
    ``name`` (``under``: what ``matches`` reads besides the report, e.g. the definition)."""
    def look(found: list[tuple[float, int]], day: float, event: PainEvent) -> None:
        if not found and matches(day, event.nrs):
            found.append((day, event.nrs))
    found = folded(facts, name, PainEvent, list, look, under=under)
    return found[0] if found else None


@dataclass(frozen=True)
class PauseState:
    """Whether the schedule is held by a clinician, and since when it last resumed."""

    paused: bool
    since: float | None
    last_resumed: float | None


@kept(ClinicianEvent)
def pause_state(facts: PatientFacts) -> PauseState:
    """Pause and resume decisions, in order."""
    paused, since, resumed = False, None, None
    for day, event in facts.of(ClinicianEvent):
        if event.decision == "pause":
            paused, since = True, day
        elif event.decision == "resume":
            paused, since, resumed = False, None, day
    return PauseState(paused, since, resumed)


@kept(ClinicianEvent)
def clinician_decisions(facts: PatientFacts) -> dict[str, list[tuple[float, ClinicianEvent]]]:
    """Clinician decisions by kind, each by day."""
    found: dict[str, list[tuple[float, ClinicianEvent]]] = {}
    for day, event in facts.of(ClinicianEvent):
        found.setdefault(event.decision, []).append((day, event))
    return found


def decisions_of(facts: PatientFacts, decision: str) -> list[tuple[float, ClinicianEvent]]:
    """Clinician decisions of one kind, by day. Read-only."""
    return clinician_decisions(facts).get(decision, [])


@kept(MobilityEvent)
def bed_bound_spells(facts: PatientFacts) -> list[tuple[float, float | None]]:
    """Bed-bound spells as (start day, end day or None while it lasts)."""
    spells: list[tuple[float, float | None]] = []
    start: float | None = None
    for day, event in facts.of(MobilityEvent):
        if event.bed_bound and start is None:
            start = day
        elif not event.bed_bound and start is not None:
            spells.append((start, day))
            start = None
    if start is not None:
        spells.append((start, None))
    return spells


@kept(NeuroEvent)
def neuro_episodes(facts: PatientFacts) -> list[float]:
    """Start days of neurological-deficit episodes (the enrollment red flag opens one at day 0)."""
    starts: list[float] = []
    open_ = "neuro_deficit" in facts.enrollment.red_flags
    if open_:
        starts.append(0.0)
    for day, event in facts.of(NeuroEvent):
        if event.deficit and not open_:
            starts.append(day)
        open_ = event.deficit
    return starts


@kept(NeuroEvent)
def neuro_deficit_open(facts: PatientFacts) -> bool:
    """Whether the latest neurological information shows a deficit."""
    events = facts.of(NeuroEvent)
    if events:
        return bool(events[-1][1].deficit)
    return "neuro_deficit" in facts.enrollment.red_flags


@kept(PulmonaryEvent)
def pulmonary_dysfunction(facts: PatientFacts) -> bool:
    """The latest pulmonary finding."""
    events = facts.of(PulmonaryEvent)
    return bool(events[-1][1].dysfunction) if events else False


@kept(MriEvent)
def mri_results(facts: PatientFacts) -> list[tuple[float, str]]:
    """MRI etiologies by day."""
    return [(day, event.etiology) for day, event in facts.of(MriEvent)]


@kept(MriEvent, RadiographEvent, DxaEvent)
def result_observations(facts: PatientFacts) -> dict[type, list[Observation]]:
    """The results (MRI, radiograph, DXA) as observed, by class, in arrival order: with the order each
    fulfilled as it arrived (``Observation.answers``)."""
    found: dict[type, list[Observation]] = {}
    for o in facts.observations:
        if isinstance(o.event, (MriEvent, RadiographEvent, DxaEvent)):
            found.setdefault(type(o.event), []).append(o)
    return found


def genant_grade(defn: PathwayDefinition, height_loss_pct: float) -> int:
    """Genant semiquantitative grade from vertebral height loss (the one boundary rule)."""
    r = defn.rules
    if height_loss_pct >= r.genant_grade_3_pct.value:
        return 3
    if height_loss_pct >= r.genant_grade_2_pct.value:
        return 2
    if height_loss_pct >= r.genant_grade_1_pct.value:
        return 1
    return 0


@kept(RadiographEvent)
def latest_height_loss(facts: PatientFacts) -> float:
    """Height loss on the latest image (the enrollment's when no radiograph came)."""
    images = facts.of(RadiographEvent)
    return images[-1][1].height_loss_pct if images else facts.enrollment.height_loss_pct


def greatest_height_loss(facts: PatientFacts) -> float:
    """The greatest height loss measured: at enrollment or on any radiograph since (a vertebra does not
    regain height on its own, so a lower later reading is measurement)."""
    return max([facts.enrollment.height_loss_pct, *(image.height_loss_pct for _, image in facts.of(RadiographEvent))])


@dataclass(frozen=True)
class Progression:
    """The first radiograph that showed progressive deformity, why, and the measurements compared."""

    day: float
    reason: str
    measured: dict[str, float] = field(default_factory=dict)


def height_loss_progressed(height: float, first: float, relative: float) -> bool:
    """Whether a height loss has grown from the first by at least ``relative`` of the first value."""
    return height > first and height - first >= relative * first - TOLERANCE


@memoised_under(RadiographEvent)
def progression(defn: PathwayDefinition, facts: PatientFacts) -> Progression | None:
    """First progression of the deformity against the first image (the enrollment's)."""
    first_height = facts.enrollment.height_loss_pct
    rel = defn.rules.progression_relative_height_loss.value
    kyph_limit = defn.rules.kyphosis_progression_deg.value
    first_kyphosis: float | None = None
    first_kyphosis_day = 0.0
    for day, image in facts.of(RadiographEvent):
        height = image.height_loss_pct
        if height_loss_progressed(height, first_height, rel):
            return Progression(
                day,
                f"height loss {height:g}% vs {first_height:g}% at enrollment: grown by "
                f">= {rel:.0%} of the first value",
                {"height_loss_pct": height, "first_height_loss_pct": first_height},
            )
        kyphosis = image.kyphosis_deg
        if kyphosis is not None:
            if first_kyphosis is None:
                first_kyphosis, first_kyphosis_day = kyphosis, day
            elif kyphosis - first_kyphosis >= kyph_limit - TOLERANCE:
                return Progression(
                    day,
                    f"kyphosis {kyphosis:g}° vs {first_kyphosis:g}° on the first image giving it (day "
                    f"{first_kyphosis_day:g}): up by "
                    f">= {kyph_limit:g}°",
                    {"kyphosis_deg": kyphosis, "first_kyphosis_deg": first_kyphosis},
                )
    return None


@dataclass
class _FlareWatch:
    """Pain reports read so far: the lowest score, whether pain is in a flare, the flares found; and
    the definition's flare rise and baseline limit (read once per fold, not on every look)."""

    lowest: int
    rise: float
    baseline_max: float
    in_flare: bool = False
    flares: list[tuple[float, int, int]] = field(default_factory=list)


def pain_flares(defn: PathwayDefinition, facts: PatientFacts) -> list[tuple[float, int, int]]:
    """Pain flares as (day, nrs, lowest before it): a rise of >= N points above the lowest
    score since enrollment, once that lowest was low enough. One per flare: a new one needs
    pain to settle back below the flare level first. Read-only."""
    def start() -> _FlareWatch:
        r = defn.rules
        return _FlareWatch(facts.enrollment.pain_nrs, r.flare_rise_nrs.value, r.flare_baseline_max_nrs.value)
    return folded(facts, "pain_flares", PainEvent, start, _flare_report, under=defn).flares


def _flare_report(watch: _FlareWatch, day: float, event: PainEvent) -> None:
    nrs, lowest = event.nrs, watch.lowest
    flaring = lowest <= watch.baseline_max and nrs >= lowest + watch.rise
    if flaring and not watch.in_flare:
        watch.flares.append((day, nrs, lowest))
    watch.in_flare = flaring
    watch.lowest = min(lowest, nrs)


@kept(PainEvent, ClinicianEvent)
def gap_reference_day(facts: PatientFacts) -> float:
    """Start of the current follow-up gap: the last pain report, or the last resume."""
    last_report = latest_pain(facts)[0]
    resumed = pause_state(facts).last_resumed
    return max(last_report, resumed) if resumed is not None else last_report


@dataclass(frozen=True)
class FollowUpGap:
    """The current gap in pain reports (decisions revision 5): since the last report, the days the
    pathway was paused since then not counted (a pause holds the follow-up checks; the silence before
    it still counts after it). ``start``: the instant the gap's days count from."""

    last_report: float
    paused: float

    @property
    def start(self) -> float:
        return self.last_report + self.paused


@kept(PainEvent, ClinicianEvent)
def follow_up_gap(facts: PatientFacts) -> FollowUpGap:
    """The gap since the last pain report, with the days paused since then (pauses that ended)."""
    last_report = latest_pain(facts)[0]
    paused, since = 0.0, None
    for day, event in facts.of(ClinicianEvent):
        if event.decision == "pause" and since is None:
            since = day
        elif event.decision == "resume" and since is not None:
            paused += max(0.0, day - max(since, last_report))
            since = None
    return FollowUpGap(last_report, paused)


def gap_day(facts: PatientFacts, revision: int) -> tuple[float, float]:
    """The current follow-up gap as the decisions' ``revision`` reads it: (the day that names it, the
    instant its days count from). Before revision 5 a resume started a new gap."""
    if revision >= 5:
        gap = follow_up_gap(facts)
        return gap.last_report, gap.start
    since = gap_reference_day(facts)
    return since, since


@kept(MriEvent)
def osteoporotic_mri_day(facts: PatientFacts) -> float | None:
    """Day of the first MRI result saying osteoporotic, or None while none has."""
    return next((day for day, etiology in mri_results(facts) if etiology == "osteoporotic"), None)


@kept(MriEvent)
def standing_osteoporotic_mri_day(facts: PatientFacts) -> float | None:
    """Day of the MRI result saying osteoporotic that still stands (the safety rules, vcf-1.2): the
    first of the latest run of such results; None while none has come, or when a later result is
    indeterminate (PT and referrals wait again for one saying osteoporotic)."""
    standing = None
    for day, etiology in mri_results(facts):
        if etiology != "osteoporotic":
            standing = None
        elif standing is None:
            standing = day
    return standing


def presumed(facts: PatientFacts) -> str:
    """How texts name the fracture: osteoporotic only once an MRI says so."""
    return "osteoporotic" if osteoporotic_mri_day(facts) is not None else "presumed osteoporotic (MRI pending)"


@kept(NeuroEvent)
def neuro_cleared_day(facts: PatientFacts) -> float:
    """Day a neurological deficit was last reported resolved (0 if there never was one)."""
    cleared, open_ = 0.0, "neuro_deficit" in facts.enrollment.red_flags
    for day, event in facts.of(NeuroEvent):
        if open_ and not event.deficit:
            cleared = day
        open_ = event.deficit
    return cleared


def pain_reports_from(facts: PatientFacts, day: float) -> list[tuple[float, int]]:
    """Pain reports observed on or after ``day`` (the enrollment score counts at day 0)."""
    reports = pain_reports(facts)
    return reports[bisect_left(reports, day, key=_by_day):]
