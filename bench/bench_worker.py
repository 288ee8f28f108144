"""A worker process for ``make bench`` on the dev server: the pathway's or the floor's.

Prints ``ready``, then one ``done WORKFLOW_ID TIME`` line per finished activity (the time it
finished, ``time.time()``), ``mark CPU_S RSS_BYTES`` on SIGUSR1, and on SIGTERM one ``stats``
line (JSON: garbage-collection pauses, CPU, memory) before it exits.

    python bench/bench_worker.py pathway|floor ADDRESS TASK_QUEUE   # key ring from VCF_KEY_RING
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_out = threading.Lock()
PAGE = os.sysconf("SC_PAGE_SIZE")


def say(line: str) -> None:
    """One line to the bench, whole (activities finish on several threads)."""
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def rss() -> int:
    """Resident memory of this process, bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def cpu() -> float:
    """CPU seconds this process has used (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Finished(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        from temporalio import activity

        result = await super().execute_activity(input)
        say(f"done {activity.info().workflow_id} {time.time():.6f}")
        return result


class Finished(Interceptor):
    """Reports each finished activity with the workflow it belongs to."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Finished(next)


class GcPauses:
    """Every garbage collection's generation and pause, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float]] = []  # generation, wall seconds, CPU seconds
        self._began = (0.0, 0.0)
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        # CPU time beside wall time: on a shared machine a pause also waits for a core.
        if phase == "start":
            self._began = (time.perf_counter(), time.thread_time())
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._began[0],
                                time.thread_time() - self._began[1]))

    def summary(self) -> dict[str, Any]:
        """Counts and the longest pause (wall and CPU time), in all and of full collections."""
        full = [p for p in self.pauses if p[0] == 2]
        return {"collections": len(self.pauses), "full_collections": len(full),
                "max_pause_ms": round(max((p[1] for p in self.pauses), default=0) * 1000, 1),
                "max_pause_cpu_ms": round(max((p[2] for p in self.pauses), default=0) * 1000, 1),
                "max_full_pause_ms": round(max((p[1] for p in full), default=0) * 1000, 1),
                "pauses_over_100ms": sum(p[1] > 0.1 for p in self.pauses)}


async def main(side: str, address: str, task_queue: str) -> None:
    """Run the worker until SIGTERM."""
    from security.codec import data_converter
    from security.keyring import KeyRing
    from worker.runtime import build_worker, connect
    from worker.settings import Settings

    ring = KeyRing.parse(os.environ["VCF_KEY_RING"], "VCF_KEY_RING")
    client = await connect(Settings(), address=address, data_converter=data_converter(ring))
    worker: Worker
    if side == "pathway":
        from activities.order_book import OrderBook

        book = OrderBook(Path(tempfile.mkdtemp(prefix="bench-orders-")) / "orders.db")
        worker = build_worker(client, book, task_queue, interceptors=[Finished()])
    else:
        from bench.floor import FloorWorkflow, floor_order

        worker = Worker(client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[floor_order],
                        interceptors=[Finished()])
    gc_pauses = GcPauses()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: say(f"mark {cpu():.4f} {rss()}"))
    async with worker:
        say(f"ready {cpu():.4f} {rss()}")
        await stop.wait()
        stats = {**gc_pauses.summary(), "cpu_s": round(cpu(), 3), "rss": rss(),
                 "gc_objects": len(gc.get_objects())}
    say("stats " + json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
    sys.stdout.flush()
    os._exit(0)
