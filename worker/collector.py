"""Garbage collection in a worker that keeps many pathways in memory.

A cached pathway is a few hundred tracked objects that live as long as the pathway does (a
year), and a full collection scans every tracked object: at 1,000 cached pathways about 360,000
of them, over 200 ms of CPU here, during which no workflow task runs (README, "Measured"). So
after each full collection its survivors move to the permanent generation (``gc.freeze``), and
the next full collection scans only what has come to live since.

The price: a reference cycle among frozen objects that becomes garbage later (a pathway that
ended or left the cache) is not freed while it stays frozen. Once every ``rescan_every``
seconds the survivors are unfrozen after a full collection, so the next full collection scans
everything again and frees those: one long collection per period instead of one at every
growth of the heap by a quarter.
"""

from __future__ import annotations

import gc
import time
from typing import Any

# A full collection after this many collections of the middle generation (the interpreter's: 10).
# With the survivors frozen it scans only what came to live since the last one, so half as many
# between them is half as long a pause, for about the same work in all.
FULL_EVERY = 5
_installed: SurvivorFreezer | None = None
_decided = False


class SurvivorFreezer:
    """Freezes what survives each full collection; unfreezes it once per ``rescan_every`` seconds."""

    def __init__(self, rescan_every: float) -> None:
        self.rescan_every = rescan_every
        self._rescanned = time.monotonic()
        self.frozen = 0  # full collections whose survivors were frozen
        self.rescans = 0  # times the survivors were let go, for one full scan

    def install(self) -> None:
        """Act after every full collection of this process, and make those come every ``FULL_EVERY``."""
        gc.callbacks.append(self.after_collection)
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_EVERY)

    def after_collection(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` entry: acts when a full collection has just finished."""
        if phase != "stop" or info.get("generation") != 2:
            return
        now = time.monotonic()
        if now - self._rescanned >= self.rescan_every:
            self._rescanned = now
            self.rescans += 1
            gc.unfreeze()  # the next full collection looks at every object again
        else:
            self.frozen += 1
            gc.freeze()  # nothing younger is left now: exactly the survivors are frozen


def keep_full_collections_short(rescan_every: float) -> SurvivorFreezer | None:
    """Install the process's :class:`SurvivorFreezer` (the first call decides, for the process's
    life). A ``rescan_every`` of 0 leaves the interpreter's collector as it is."""
    global _installed, _decided
    if not _decided:
        _decided = True
        if rescan_every > 0:
            _installed = SurvivorFreezer(rescan_every)
            _installed.install()
    return _installed
