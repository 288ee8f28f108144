"""worker.collector: what survives a full collection is frozen, and let go once per period."""

from __future__ import annotations

import gc

import pytest

from worker.collector import FULL_EVERY, SurvivorFreezer, keep_full_collections_short


class Node:
    """An object in a reference cycle with itself: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def freezer():
    gc.collect()
    gc.freeze()  # what the test process holds already stays out of the counts
    made: list[SurvivorFreezer] = []

    def make(rescan_every: float) -> SurvivorFreezer:
        made.append(SurvivorFreezer(rescan_every))
        gc.callbacks.append(made[-1].after_collection)
        return made[-1]

    yield make
    for f in made:
        gc.callbacks.remove(f.after_collection)
    gc.unfreeze()
    gc.collect()


def test_survivors_of_a_full_collection_are_frozen_and_the_next_one_scans_only_the_new(freezer):
    f = freezer(3600)
    frozen_before = gc.get_freeze_count()
    kept = [Node() for _ in range(5000)]
    gc.collect()
    assert f.frozen == 1 and f.rescans == 0
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    assert not any(gc.is_tracked(n) and n in gc.get_objects(generation=2) for n in kept[:10])


def test_a_cycle_dropped_while_frozen_is_freed_at_the_rescan(freezer):
    f = freezer(3600)
    dropped = [Node() for _ in range(2000)]
    gc.collect()  # frozen now
    del dropped
    assert gc.collect() < 2000  # frozen: not freed by a collection
    f.rescan_every = 0  # the period is over
    gc.collect()  # this one lets the survivors go ...
    assert f.rescans == 1
    assert gc.collect() >= 2000  # ... and the next one frees the dropped cycles


def test_nothing_is_frozen_by_collections_of_young_generations(freezer):
    f = freezer(3600)
    frozen_before = gc.get_freeze_count()
    gc.collect(0)
    gc.collect(1)
    assert f.frozen == 0 and gc.get_freeze_count() == frozen_before


def test_the_test_process_keeps_the_interpreters_collector():
    # tests/conftest.py decided first (0): a worker built later does not install the freezer.
    assert keep_full_collections_short(3600) is None
    assert not any(isinstance(getattr(cb, "__self__", None), SurvivorFreezer) for cb in gc.callbacks)



def test_installed_it_collects_in_full_twice_as_often():
    before = gc.get_threshold()
    f = SurvivorFreezer(3600)
    try:
        f.install()
        assert f.after_collection in gc.callbacks
        assert gc.get_threshold() == (before[0], before[1], FULL_EVERY) and FULL_EVERY < before[2]
    finally:
        gc.callbacks.remove(f.after_collection)
        gc.set_threshold(*before)
