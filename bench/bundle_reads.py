"""Benchmark: one patient's state read while 40 large order-Bundle reads are in flight.

The API runs as its own process (``python -m api.main``) over a real order book of a few
thousand orders, the Temporal dev server and a worker; 40 clients read full pages of the order
Bundle (``_count=100``, the cap) over and over while one client reads a patient's state. Prints
the state read's latency alone and under that load, the Bundle reads served, and what
``/readyz`` said meanwhile.

    .venv/bin/python bench/bundle_reads.py [--orders 5000] [--readers 40] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.testing import WorkflowEnvironment

from activities.database import utc_now
from activities.order_book import OrderBook, new_order_id
from security.codec import data_converter
from security.keyring import KeyRing
from worker.runtime import binary, build_worker, configure_runtime
from workflows import search_attributes as sa

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-" + uuid.uuid4().hex
PATIENT = "pt-bench-state"


def fill(book: OrderBook, orders: int) -> None:
    """``orders`` orders across 100 patients, written straight into the order book's table."""
    now = utc_now()
    rows = []
    for i in range(orders):
        patient = f"pt-bench-{i % 100:03d}"
        workflow = f"vcf-pathway-{patient}"
        rows.append((new_order_id(), f"{workflow}/a{i}", patient, workflow, f"a{i}", "order_dxa", "ServiceRequest",
                     "active", "routine", i // 100, "DXA lumbar spine", "T-score at or below -2.5 on DXA",
                     "Guideline: Diagnosis / DXA [guideline vcf-1.2]", json.dumps({"level": "L2"}),
                     json.dumps([{"system": "http://www.ama-assn.org/go/cpt", "code": "77080",
                                  "display": "DXA axial skeleton"}]), now, now))
    with sqlite3.connect(str(book.path)) as db:
        db.executemany("INSERT INTO orders (id, idempotency_key, patient_id, workflow_id, action_id, kind, resource,"
                       " status, priority, day, title, rationale, citation, details, codes, created_at, updated_at)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(name: str, ms: list[float]) -> str:
    return (f"{name}: n={len(ms)}  p50 {statistics.median(ms):.1f} ms  p95 {percentile(ms, 0.95):.1f} ms  "
            f"max {max(ms):.1f} ms")


async def state_read(http: httpx.AsyncClient) -> float:
    began = time.perf_counter()
    r = await http.get(f"/v1/patients/{PATIENT}")
    r.raise_for_status()
    return (time.perf_counter() - began) * 1000


async def run(orders: int, readers: int, seconds: float) -> None:
    configure_runtime(core_level="ERROR")
    ring = KeyRing.generate("bench")  # payloads encrypted as in production; the API gets the same ring
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"), dev_server_database_filename=str(data_dir / "temporal.db"),
            search_attributes=sa.ALL, data_converter=data_converter(ring))
        book = OrderBook(data_dir / "orders.db")
        fill(book, orders)
        port = 18000 + os.getpid() % 1000
        api = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.main", cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
            env={**os.environ, "VCF_DATA_DIR": str(data_dir), "VCF_API_PORT": str(port), "VCF_API_TOKENS": TOKEN,
                 "VCF_KEY_RING": ring.to_json(),
                 "TEMPORAL_ADDRESS": env.client.service_client.config.target_host, "VCF_LOG_LEVEL": "WARNING"})
        try:
            async with build_worker(env.client, book), httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                    limits=httpx.Limits(max_connections=readers + 10)) as http:
                await ready(http)
                r = await http.post("/v1/patients", json={"id": PATIENT, "fracture_level": "L2", "height_loss_pct": 25,
                                                          "pain_nrs": 8})
                r.raise_for_status()
                while (await http.get(f"/v1/patients/{PATIENT}")).json()["source"] != "workflow_query":
                    await asyncio.sleep(0.2)
                alone = [await state_read(http) for _ in range(40)]

                # The 40 Bundle readers run in a process of their own: this one only times the state reads.
                load = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--load", f"http://127.0.0.1:{port}", "--readers", str(readers),
                    "--seconds", str(seconds), stdout=asyncio.subprocess.PIPE,
                    env={**os.environ, "BENCH_TOKEN": TOKEN})
                stop = time.monotonic() + seconds
                readyz: Counter[int] = Counter()
                in_flight: list[int] = []
                await asyncio.sleep(1.0)  # let the load build up
                loaded = []
                while time.monotonic() < stop - 0.5:
                    loaded.append(await state_read(http))
                    r = await http.get("/readyz")
                    readyz[r.status_code] += 1
                    if r.status_code == 200:
                        in_flight.append(r.json()["in_flight"])
                    else:  # "load: N requests in flight (limit M)"
                        in_flight += [int(d.split()[1]) for d in r.json()["detail"] if d.startswith("load:")]
                    await asyncio.sleep(0.05)
                out, _ = await load.communicate()
                bundle_ms, sizes = json.loads(out)
        finally:
            api.send_signal(signal.SIGTERM)
            await api.wait()
            await env.shutdown()

    print(f"order book: {orders} orders; {readers} clients reading Bundles of 100 orders for {seconds:g} s "
          f"(API in its own process, 2-core machine)")
    print(figures("state read, alone       ", alone))
    print(figures("state read, under load  ", loaded))
    print(figures("Bundle read (100 orders)", bundle_ms)
          + f"  ({len(bundle_ms) / seconds:.1f}/s, {statistics.median(sizes) / 1024:.0f} KiB each)")
    print(f"/readyz during the load: {dict(readyz)}; requests in flight it saw: "
          f"median {statistics.median(in_flight) if in_flight else 0:g}, max {max(in_flight, default=0)}")


async def bundle_load(url: str, readers: int, seconds: float) -> None:
    """``readers`` clients reading full Bundle pages for ``seconds``; prints [latencies ms, sizes]."""
    stop = time.monotonic() + seconds
    bundle_ms: list[float] = []
    sizes: list[int] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                                 limits=httpx.Limits(max_connections=readers)) as http:
        async def reader(n: int) -> None:
            offset = (n * 100) % 1000
            while time.monotonic() < stop:
                began = time.perf_counter()
                r = await http.get("/v1/orders", params={"_count": 100, "_offset": offset})
                r.raise_for_status()
                bundle_ms.append((time.perf_counter() - began) * 1000)
                sizes.append(len(r.content))

        await asyncio.gather(*(reader(n) for n in range(readers)))
    print(json.dumps([bundle_ms, sizes]))


async def ready(http: httpx.AsyncClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not become ready")
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--readers", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)  # the readers' own process
    args = parser.parse_args()
    if args.load:
        global TOKEN
        TOKEN = os.environ["BENCH_TOKEN"]
        asyncio.run(bundle_load(args.load, args.readers, args.seconds))
    else:
        asyncio.run(run(args.orders, args.readers, args.seconds))
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
