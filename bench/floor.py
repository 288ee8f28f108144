"""The bare-SDK floor: a plain Temporal workflow of the pathway's shape, for ``make bench``.

It does what the pathway does minus the guideline: some activities at enrollment, then it waits
for signals (one timer per wait, as a plain ``wait_condition`` with a timeout makes) and runs one
activity for each signal the plan names, until its year is over. Its activity does nothing, so
the floor is the SDK's own cost. Run alone it is the floor's whole process for one patient-year:

    .venv/bin/python bench/floor.py SCENARIO.json ACTIONS   # vcf simulate SCENARIO.json's schedule
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RawValue

FLOOR_AT_ENROLLMENT = 9  # the orders a pathway places at enrollment


@dataclass
class FloorPlan:
    """What the floor workflow does: activities at start, which signals (by arrival order) run one, how long."""

    start_activities: int = FLOOR_AT_ENROLLMENT
    activity_signals: list[int] = field(default_factory=list)
    every_signal: bool = False
    days: float = 365.0


@activity.defn(name="floor_order")
async def floor_order(n: int) -> str:
    """An order that writes nothing."""
    return f"ord-{n}"


@workflow.defn(name="Floor")
class FloorWorkflow:
    """A bare-SDK workflow of the pathway's shape."""

    def __init__(self) -> None:
        self._signals = 0
        self._seen = 0

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Any signal, counted."""
        self._signals += 1

    @workflow.run
    async def run(self, plan: FloorPlan) -> int:
        """Activities at start, then one per planned signal until the plan's days are over."""
        end = workflow.now() + timedelta(days=plan.days, seconds=1)
        done = 0
        for _ in range(plan.start_activities):
            done += 1
            await workflow.execute_activity(floor_order, done, start_to_close_timeout=timedelta(seconds=10))
        while True:
            try:
                await workflow.wait_condition(lambda: self._signals > self._seen, timeout=end - workflow.now())
            except TimeoutError:
                return done
            while self._seen < self._signals:
                if plan.every_signal or self._seen in plan.activity_signals:
                    done += 1
                    await workflow.execute_activity(floor_order, done, start_to_close_timeout=timedelta(seconds=10))
                self._seen += 1


async def floor_year(env: Any, schedule: list[tuple[float, str, dict]], actions: int) -> tuple[int, int]:
    """One floor patient-year on the time-skipping server ``env``: (activities run, history events)."""
    from temporalio.worker import Worker

    task_queue = f"floor-{uuid.uuid4()}"
    extra = max(0, actions - FLOOR_AT_ENROLLMENT)
    plan = FloorPlan(activity_signals=list(range(extra)))
    async with Worker(env.client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[floor_order]):
        handle = await env.client.start_workflow(FloorWorkflow.run, plan, id=f"floor-{uuid.uuid4()}",
                                                 task_queue=task_queue)
        began = await env.get_current_time()
        for day, name, payload in schedule:
            delta = began + timedelta(days=day) - await env.get_current_time()
            if delta > timedelta(0):
                await env.sleep(delta)
            await handle.signal(name, payload)
        done = await handle.result()
        events = 0
        async for _ in handle.fetch_history_events():
            events += 1
    return done, events


def scenario_schedule(path: Path) -> list[tuple[float, str, dict]]:
    """A scenario file's events as (day, signal, payload)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    schedule = [(float(e["day"]), e["type"], {k: v for k, v in e.items() if k != "day"}) for e in raw["events"]]
    return sorted(schedule, key=lambda s: s[0])


async def main(path: Path, actions: int) -> None:
    """The floor's whole process: a test server, one patient-year of ``path``'s schedule, JSON out."""
    from cli.simulate import start_test_server

    schedule = scenario_schedule(path)
    env = await start_test_server()
    try:
        done, events = await floor_year(env, schedule, actions)
    finally:
        await env.shutdown()
    print(json.dumps({"activities": done, "history_events": events}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import floor  # the sandbox imports workflows by module name, never __main__

    asyncio.run(floor.main(Path(sys.argv[1]), int(sys.argv[2])))
    sys.stdout.flush()
    os._exit(0)
