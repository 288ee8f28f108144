"""Skipping a decision step that cannot answer differently from last time.

A step of the decisions reads a few kinds of observation, the actions taken and the notes
recorded, and sometimes the clock. When it last proposed nothing, it will propose nothing again
until one of those changes: a new observation of a kind it reads, a new action or note, or the
clock reaching the first instant at which one of its thresholds could be passed. :func:`step`
marks a step with what it reads (and, for a step that reads the clock, that instant), and runs it
again only then — so a decision after one new pain report re-reads the pain steps alone.

Only a quiet answer is reused. A step that reads no action or note but its own (``others=False``)
stays quiet when other steps' are taken, or proposed earlier in the same decision; any other step
is reused only while the decision being built is still empty (it may read what an earlier step
proposed). Steps that mostly stay quiet are checked together (:func:`steps`): one check for the
lot while none of them can answer otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from math import inf
from typing import TypeVar

from pathway.builder import Builder, Decision
from pathway.facts import GRACE, PatientFacts

R = TypeVar("R")
DECISION = "decision"  # the key of the last decision found quiet
Until = Callable[[Builder], float]
# What each marked step reads: its event classes, and whether it reads others' actions and notes.
_MARKED: dict[Callable[[Builder], object], tuple[tuple[type, ...], bool]] = {}


def step(*reads: type, until: Until | None = None,
         others: bool = True) -> Callable[[Callable[[Builder], R]], Callable[[Builder], R]]:
    """Mark a decision step with the event classes it reads; ``until(b)``, for a step that reads the
    clock, gives the earliest instant after ``b.now`` at which it could propose something without
    new facts (an earlier instant is always safe: the step is merely run again). ``others=False``
    for a step that reads no action or note but its own: another step's being taken cannot change
    its answer (its own are new only after a decision in which it proposed them)."""
    def mark(run: Callable[[Builder], R]) -> Callable[[Builder], R]:
        return _quiet(run, reads, others, until)
    return mark


def steps(*members: Callable[[Builder], object]) -> Callable[[Callable[[Builder], R]], Callable[[Builder], R]]:
    """Mark a function that runs these steps in turn (and nothing else): it reads what they read and
    is quiet while all of them are, until the first of their instants — one check for the lot."""
    reads = tuple(dict.fromkeys(kind for member in members for kind in _MARKED[member][0]))
    others = any(_MARKED[member][1] for member in members)

    def mark(run: Callable[[Builder], R]) -> Callable[[Builder], R]:
        return _quiet(run, reads, others, None, group=True)
    return mark


def _quiet(run: Callable[[Builder], R], reads: tuple[type, ...], others: bool, until: Until | None,
           group: bool = False) -> Callable[[Builder], R]:
    name = f"{run.__module__}.{run.__qualname__}"

    @wraps(run)
    def quiet_or_run(b: Builder) -> R:
        if others and b.proposed:
            return run(b)
        # last: [actions and notes seen, definition, quiet from, quiet until, observations seen, answer]
        last = b.quiet.get(name)
        if last is not None and (  # what it reads first: after an observation, the usual reason to run again
                (seen := last[4]) == b.observations_seen
                or (b.arrived[1].isdisjoint(reads) if seen == b.arrived[0]
                    else not b.views.changed_since(seen, reads))) and (
                last[2] <= b.now < last[3] and last[1] is b.defn and (not others or last[0] == b.actions_seen)):
            last[4] = b.observations_seen  # still quiet with these: the next check is the short one
            if last[3] < b.until:
                b.until = last[3]
            result: R = last[5]
            return result
        proposed = len(b.proposed)
        if group:  # the members' instants, each lowering b.until, are the group's
            before, b.until = b.until, inf
            result = run(b)
            quiet_until, b.until = b.until, min(before, b.until)
        else:
            result = run(b)
            quiet_until = until(b) if until and len(b.proposed) == proposed else inf
            if quiet_until < b.until:
                b.until = quiet_until
        if len(b.proposed) == proposed:  # quiet: kept until something it reads changes
            b.quiet[name] = [b.actions_seen, b.defn, b.now, quiet_until, b.observations_seen, result]
        return result

    _MARKED[quiet_or_run] = (reads, others)
    return quiet_or_run


def nothing_new(defn: object, facts: PatientFacts, now: float) -> bool:
    """Whether the last decision found nothing, nothing has changed since, and ``now`` is before the
    earliest instant at which one of its steps could answer otherwise: then this one finds nothing."""
    views = facts.views()
    # (observations, actions, notes, definition, quiet from, quiet until): what changes most often first
    last = views.quiet.get(DECISION)
    return (last is not None and last[0] == views.count and last[1] == len(facts.taken)
            and last[2] == len(facts.noted) and last[3] is defn and last[4] <= now < last[5])


def remember(b: Builder, until: float) -> Decision:
    """Return the decision, remembering it if it found nothing (see :func:`nothing_new`); ``until``:
    an instant of the decision's own (outside its steps) at which it could answer otherwise."""
    d = b.decision
    if not b.proposed and d.status == "running":
        b.quiet[DECISION] = (b.observations_seen, *b.actions_seen, b.defn, b.now, min(b.until, until))
    return d


def more_than_from(now: float, start: float, days: float) -> float:
    """When "more than ``days`` since ``start``" could first hold, seen at ``now``: ``start + days``
    (at or a little before the instant it does), or infinity once it holds."""
    return inf if now - start > days + GRACE else start + days  # more_than, inlined: asked every decision
