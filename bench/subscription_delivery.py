"""Benchmark: rest-hook delivery of order changes to one subscriber on loopback.

Places N orders in the order book (each one change), with one ``Task`` subscription delivering
them through its workflow on the time-skipping server, and prints the notifications per second
and the latency from a change to its arrival at the receiver (poll interval included).

    make bench-subscriptions   # or: .venv/bin/python bench/subscription_delivery.py [--orders N] [--poll S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.order_book import OrderBook
from activities.subscriptions import EVENT_HEADER, SubscriptionStore
from cli.simulate import start_test_server
from worker.runtime import build_worker
from workflows.subscription_delivery import DeliveryInput, SubscriptionDeliveryWorkflow, subscription_workflow_id

ARRIVED: dict[int, float] = {}  # event number -> when it arrived (perf_counter)


class Hook(BaseHTTPRequestHandler):
    """Takes every notification at once (204)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        ARRIVED.setdefault(int(self.headers[EVENT_HEADER]), time.perf_counter())
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def main(orders: int, poll: float) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = await start_test_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            book = OrderBook(Path(tmp) / "orders.db")
            sub = SubscriptionStore(book.database).create(criteria="Task", endpoint=f"http://127.0.0.1:{server.server_port}/",
                                                      headers=[], secret="bench-secret-0123456789")
            task_queue = f"bench-{uuid.uuid4()}"
            async with build_worker(env.client, book, task_queue):
                handle = await env.client.start_workflow(
                    SubscriptionDeliveryWorkflow.run,
                    DeliveryInput(subscription_id=sub.id, poll_seconds=poll, search_attributes=False),
                    id=subscription_workflow_id(sub.id), task_queue=task_queue)
                placed: list[float] = []
                began = time.perf_counter()
                for i in range(orders):
                    book.place(idempotency_key=f"wf/{i}", patient_id=f"pt-{i % 50}", workflow_id="wf", action_id=str(i),
                               kind="order_dxa", resource="ServiceRequest", priority="routine", day=0, title="DXA",
                               rationale="bench", citation="bench", details={}, codes=[])
                    placed.append(time.perf_counter())
                while len(ARRIVED) < orders:
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - began
                await handle.terminate("bench done")
    finally:
        await env.shutdown()
        server.shutdown()
    latency = sorted(ARRIVED[n + 1] - placed[n] for n in range(orders))
    print(f"rest-hook delivery on the time-skipping server, {orders} order changes, poll {poll:g} s, "
          f"{os.cpu_count()} cores")
    print(f"  all delivered in {elapsed:.2f} s: {orders / elapsed:.0f} notifications per second "
          "(one at a time, in order)")
    print(f"  latency change -> receiver: median {statistics.median(latency) * 1000:.0f} ms, "
          f"p95 {latency[int(0.95 * (orders - 1))] * 1000:.0f} ms, max {latency[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--poll", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.poll))
    sys.stdout.flush()
    os._exit(0)
