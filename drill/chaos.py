"""What goes wrong, and when: a seeded schedule of worker kills, dev-server restarts and one
order-book outage, played against the :class:`~drill.processes.Supervisor` while the load runs.

The order book is taken away by holding a lock that keeps every other writer out: SQLite's
write lock (``BEGIN EXCLUSIVE``) on its file, or, with ``VCF_DATABASE_URL``, an ``ACCESS
EXCLUSIVE`` lock on the order book's PostgreSQL tables (the drill does not own that server, so it
does not stop it). Every order write waits, gives up and is retried by Temporal with backoff, and
the API's own database work answers 503 until it returns.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from drill.processes import WORKER_COUNT, Supervisor

log = logging.getLogger("drill")


@dataclass(frozen=True)
class Step:
    """One thing to do at ``at`` seconds into the load."""

    at: float
    what: str  # "kill", "restart_server", "outage"
    worker: int = 0
    down_for: float = 0.0


def schedule(seed: int, span: float, kills: int, server_restarts: int, outage_s: float) -> list[Step]:
    """The drill's mishaps over ``span`` seconds, the same for the same seed. Kills fall at random
    moments; the server restarts and the outage are spread so that they do not overlap."""
    rng = random.Random(seed)
    steps = [Step(rng.uniform(0.05, 0.95) * span, "kill", worker=rng.randrange(WORKER_COUNT),
                  down_for=rng.uniform(0.5, 3.0)) for _ in range(kills)]
    # Server restarts and the outage each get a slice of their own, in a seeded order.
    big = ["restart_server"] * server_restarts + (["outage"] if outage_s > 0 else [])
    rng.shuffle(big)
    for i, what in enumerate(big):
        lo, hi = (i + 0.2) / len(big), (i + 0.6) / len(big)
        steps.append(Step(rng.uniform(lo, hi) * span * 0.85, what,
                          down_for=outage_s if what == "outage" else rng.uniform(1.0, 3.0)))
    return sorted(steps, key=lambda s: s.at)


class SqliteOutage:
    """Holds the order book's SQLite write lock for a while (a thread of its own)."""

    def __init__(self, path: Path):
        self.path = path
        self.held = threading.Event()  # set while the lock is held

    def hold(self, seconds: float) -> float:
        """Take the lock, keep it ``seconds``, let go; return how long it was really held."""
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            taken = time.monotonic()
            self.held.set()
            log.warning("order book taken away", extra={"seconds": seconds})
            time.sleep(seconds)
            db.execute("ROLLBACK")
            self.held.clear()
            return time.monotonic() - taken
        finally:
            db.close()


class PostgresOutage(SqliteOutage):
    """Holds an ``ACCESS EXCLUSIVE`` lock on the order book's PostgreSQL tables for a while: no
    other session reads or writes them until it is let go."""

    TABLES = "orders, order_changes"

    def __init__(self, url: str):
        super().__init__(Path())
        self.url = url

    def hold(self, seconds: float) -> float:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as db:  # a transaction, rolled back on exit
            db.execute(f"LOCK TABLE {self.TABLES} IN ACCESS EXCLUSIVE MODE")
            taken = time.monotonic()
            self.held.set()
            log.warning("order book taken away", extra={"seconds": seconds})
            time.sleep(seconds)
            db.rollback()
            self.held.clear()
            return time.monotonic() - taken


def outage_for(database_url: str | None, order_book: Path) -> SqliteOutage:
    """How to take this order book away: its PostgreSQL tables locked, or its SQLite file."""
    return PostgresOutage(database_url) if database_url else SqliteOutage(order_book)


@dataclass
class Chaos:
    """Plays a schedule; counts what it did."""

    supervisor: Supervisor
    outage: SqliteOutage
    steps: list[Step]
    outage_s: float = 0.0
    done: list[str] = field(default_factory=list)
    # Called once the book is away: makes orders due then (the API's own writes wait on the same lock).
    while_away: Callable[[], Awaitable[None]] | None = None

    async def run(self, started: float) -> None:
        """Do each step at its time (measured from ``started``, a loop time)."""
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task] = set()
        restarts: dict[int, asyncio.Task] = {}
        for step in self.steps:
            await asyncio.sleep(max(0.0, started + step.at - loop.time()))
            if step.what == "kill":
                if step.worker in restarts:  # still down from the last kill: kill it once it is back
                    await restarts[step.worker]
                self.supervisor.kill_worker(step.worker)
                restarts[step.worker] = asyncio.create_task(self._restart_worker(step.worker, step.down_for))
                pending.add(restarts[step.worker])
            elif step.what == "restart_server":
                await self.supervisor.restart_server(step.down_for)
            else:
                pending.add(asyncio.create_task(self._outage(step.down_for)))
            self.done.append(f"{loop.time() - started:7.1f}s {step.what}"
                             + (f" worker-{step.worker}" if step.what == "kill" else f" {step.down_for:.1f}s"))
        await asyncio.gather(*pending)

    async def _restart_worker(self, index: int, after: float) -> None:
        await asyncio.sleep(after)
        self.supervisor.start_worker(index)

    async def _outage(self, seconds: float) -> None:
        holding = asyncio.ensure_future(asyncio.to_thread(self.outage.hold, seconds))
        while not self.outage.held.is_set() and not holding.done():
            await asyncio.sleep(0.05)
        if self.while_away is not None and not holding.done():
            await self.while_away()
        self.outage_s += await holding

