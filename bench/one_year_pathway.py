"""Benchmark: one patient's whole year on the time-skipping server.

Prints the wall time of a one-year pathway (enrollment to the day-365 completion, with weekly
pain reports and every result coming back) and how many history events it makes.

    make bench            # or: .venv/bin/python bench/one_year_pathway.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.order_book import OrderBook
from cli.simulate import start_test_server
from pathway.contract import Enrollment
from worker.runtime import ephemeral_worker
from workflows.models import PathwayOptions
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

RESULTS: dict[int, tuple[str, dict[str, Any]]] = {
    3: ("mri", {"etiology": "osteoporotic"}), 10: ("dxa", {"t_score": -2.7}),
    15: ("radiograph", {"height_loss_pct": 26}), 43: ("radiograph", {"height_loss_pct": 27}),
    85: ("radiograph", {"height_loss_pct": 27}), 183: ("radiograph", {"height_loss_pct": 27})}
# Weekly pain reports and the results, as (day, signal, payload): 58 signals.
PAIN: dict[int, tuple[str, dict[str, Any]]] = {d: ("pain", {"nrs": max(1, 8 - d // 20)}) for d in range(7, 365, 7)}
SCHEDULE: list[tuple[float, str, dict[str, Any]]] = [
    (float(day), signal, payload) for day, (signal, payload) in sorted({**PAIN, **RESULTS}.items())]


async def one_year(env, book: OrderBook, run: int) -> tuple[float, int, int, str]:
    task_queue = f"bench-{uuid.uuid4()}"
    async with ephemeral_worker(env, book, task_queue):
        began = time.perf_counter()
        handle = await start_pathway(env.client, Enrollment(id=f"pt-bench-{run}", fracture_level="L2",
                                                            height_loss_pct=25, pain_nrs=8),
                                     task_queue=task_queue,
                                     options=PathwayOptions(search_attributes=False, ui_metadata=False))
        enrolled_at = (await handle.query(PatientPathwayWorkflow.state)).enrolled_at
        for day, signal, payload in SCHEDULE:
            delta = enrolled_at + timedelta(days=day) - await env.get_current_time()
            if delta > timedelta(0):
                await env.sleep(delta)
            await handle.signal(signal, payload)
        result = await handle.result()
        elapsed = time.perf_counter() - began
        events = 0
        async for _ in handle.fetch_history_events():
            events += 1
    return elapsed, events, len(result.actions), result.status


async def main(runs: int) -> None:
    env = await start_test_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            book = OrderBook(Path(tmp) / "orders.db")
            measured = [await one_year(env, book, run) for run in range(runs)]
    finally:
        await env.shutdown()
    times = [m[0] for m in measured]
    print(f"one-year pathway on the time-skipping server, {runs} runs, {os.cpu_count()} cores")
    signals = len(SCHEDULE)
    print(f"  status: {measured[0][3]}; actions: {measured[0][2]}; signals sent: {signals}")
    print(f"  wall time: median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s")
    print(f"  history events (last run): {measured[-1][1]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
    sys.stdout.flush()
    os._exit(0)
