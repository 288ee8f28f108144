"""``make bench``: the pathway beside a bare-SDK floor of the same shape, in one run, one table.

- time-skipping server: one patient-year (enrollment, 52 weekly pain reports, 6 results), in
  process (wall time, history events, timers) and as a whole process (``vcf simulate`` against
  ``bench/floor.py``);
- dev server with the search attributes (as in production), each side's worker in a process of
  its own: N enrollments (enrollments/s, worker CPU per enrollment), one side-effect report per
  patient as fast as they can be sent (events/s), then one more per patient at a steady rate with
  all N open (event-to-order latency p50/p95/p99), worker memory per cached pathway and the
  garbage collector's pauses;
- the pure core: ``bench/decide_core.py`` (µs per ``decide``, patient-years per second);
- the cohort simulator: ``vcf cohort`` over the default cohort model on every core (patient-years
  per second, issue 13's target).

Each target of issues 9 and 13 is printed with its figure and whether it is met. The machine is shared:
the load average is printed with the figures.

    .venv/bin/python bench/pathway_vs_floor.py [--patients 1000] [--runs 3] [--rate 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.common import SearchAttributePair, TypedSearchAttributes  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from activities.order_book import OrderBook  # noqa: E402
from bench.floor import FLOOR_AT_ENROLLMENT, FloorPlan, FloorWorkflow, floor_year  # noqa: E402
from bench.one_year_pathway import SCHEDULE, one_year  # noqa: E402
from cli.simulate import start_test_server  # noqa: E402
from pathway.contract import Enrollment  # noqa: E402
from security.codec import data_converter  # noqa: E402
from security.keyring import KeyRing  # noqa: E402
from worker.runtime import binary, configure_runtime  # noqa: E402
from workflows import search_attributes as sa  # noqa: E402
from workflows.models import PathwayOptions  # noqa: E402
from workflows.starter import start_pathway  # noqa: E402

WORKER = ROOT / "bench" / "bench_worker.py"
DECIDE_BEFORE_US = 140.0  # µs per decide before the incremental core (issue 9, same machine)
COHORT_TARGET = 2_000  # patient-years per second on this 2-core machine (issue 13)
SIDE_EFFECT = {"drug": "calcitonin", "effect": "nausea"}


@dataclass
class Figure:
    """One row: the floor's figure, the pathway's, and the target if there is one."""

    name: str
    unit: str
    floor: float | None
    pathway: float | None
    target: str = ""
    met: bool | None = None

    def ratio(self) -> float | None:
        """Pathway over floor."""
        return self.pathway / self.floor if self.floor and self.pathway is not None else None


# --- time-skipping --------------------------------------------------------------------------


async def time_skipping(runs: int) -> dict[str, Any]:
    """One patient-year, pathway and floor, ``runs`` times each on one test server."""
    env = await start_test_server()
    pathway, floor = [], []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            book = OrderBook(Path(tmp) / "orders.db")
            for run in range(runs):
                elapsed, events, actions, _ = await one_year(env, book, run)
                pathway.append((elapsed, events))
                began = time.perf_counter()
                _, floor_events = await floor_year(env, SCHEDULE, actions)
                floor.append((time.perf_counter() - began, floor_events))
            timers = await _timers_of_last_pathway(env.client, f"vcf-pathway-pt-bench-{runs - 1}")
    finally:
        await env.shutdown()
    return {"pathway_s": statistics.median(p[0] for p in pathway), "floor_s": statistics.median(f[0] for f in floor),
            "pathway_events": pathway[-1][1], "floor_events": floor[-1][1], "actions": actions, "timers": timers}


async def _timers_of_last_pathway(client: Client, workflow_id: str) -> int:
    started = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        started += event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    return started


def whole_processes(runs: int, actions: int) -> dict[str, float]:
    """``vcf simulate`` of the patient-year against the floor's process, wall time, median of ``runs``."""
    scenario = {"name": "bench patient-year", "until_day": 365,
                "patient": {"id": "pt-bench-process", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 8},
                "events": [{"day": day, "type": signal, **payload} for day, signal, payload in SCHEDULE]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "year.json"
        path.write_text(json.dumps(scenario))
        commands = {"pathway": [str(Path(sys.executable).parent / "vcf"), "simulate", str(path)],
                    "floor": [sys.executable, str(ROOT / "bench" / "floor.py"), str(path), str(actions)]}
        times: dict[str, list[float]] = defaultdict(list)
        for _ in range(runs):
            for side, command in commands.items():
                began = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
                times[side].append(time.perf_counter() - began)
                if done.returncode != 0:
                    raise RuntimeError(f"{side} process failed: {done.stderr[-2000:]}")
    return {side: statistics.median(t) for side, t in times.items()}


# --- dev server -----------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A bench worker process and what it reports."""

    proc: asyncio.subprocess.Process
    finished: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    marks: asyncio.Queue = field(default_factory=asyncio.Queue)
    stats: dict[str, Any] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    at_ready: tuple[float, int] = (0.0, 0)
    count: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        """Follow the worker's lines until it exits."""
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            kind, _, rest = raw.decode().strip().partition(" ")
            if kind == "done":
                workflow_id, at = rest.split()
                self.finished[workflow_id].append(float(at))
                self.count += 1
                self.changed.set()
            elif kind == "mark":
                cpu, rss = rest.split()
                self.marks.put_nowait((float(cpu), int(rss)))
            elif kind == "ready":
                cpu, rss = rest.split()
                self.at_ready = (float(cpu), int(rss))
                self.ready.set()
            elif kind == "stats":
                self.stats = json.loads(rest)

    async def mark(self) -> tuple[float, int]:
        """The worker's CPU seconds and resident memory now."""
        self.proc.send_signal(signal.SIGUSR1)
        return await asyncio.wait_for(self.marks.get(), 30)

    async def until(self, done: int, timeout: float) -> None:
        """Wait until ``done`` activities have finished in all."""
        deadline = time.monotonic() + timeout
        while self.count < done:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.count} of {done} activities finished")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 5))


def progress(text: str) -> None:
    """A line on stderr while the bench runs."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def dev_server_side(client: Client, address: str, ring: KeyRing, side: str, patients: int,
                          rate: float) -> dict[str, Any]:
    """One side's enrollments, burst of events and steady events, with its worker in its own process."""
    task_queue = f"bench-{side}-{uuid.uuid4()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), side, address, task_queue, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "VCF_KEY_RING": ring.to_json()}, cwd=ROOT)
    worker = WorkerProcess(proc)
    reader = asyncio.create_task(worker.read())
    await asyncio.wait_for(worker.ready.wait(), 60)
    at_enrollment = 1 if side == "pathway" else FLOOR_AT_ENROLLMENT
    handles: list[Any] = []
    sem = asyncio.Semaphore(50)

    async def enroll(i: int) -> None:
        pid = f"pt-bench-{i:05d}"
        async with sem:
            if side == "pathway":
                handles.append(await start_pathway(client, Enrollment(id=pid, fracture_level="L2", height_loss_pct=25,
                                                                      pain_nrs=8), task_queue=task_queue,
                                                   options=PathwayOptions(search_attributes=True, ui_metadata=True)))
            else:
                handles.append(await client.start_workflow(
                    FloorWorkflow.run, FloorPlan(every_signal=True), id=f"floor-{pid}", task_queue=task_queue,
                    search_attributes=TypedSearchAttributes([
                        SearchAttributePair(sa.PATHWAY_PHASE, "acute"),
                        SearchAttributePair(sa.GUIDELINE_VERSION, "floor"),
                        SearchAttributePair(sa.FRACTURE_LEVEL, "L2"),
                        SearchAttributePair(sa.ESCALATION_STATE, "none")]),
                    static_summary="VCF pathway L2, guideline floor"))

    cpu0, _ = await worker.mark()
    began = time.time()
    await asyncio.gather(*(enroll(i) for i in range(patients)))
    await worker.until(patients * at_enrollment, 600 + 2 * patients)
    progress(f"{side}: {patients} enrolled")
    enrolled = max(times[at_enrollment - 1] for times in worker.finished.values())
    cpu1, _ = await worker.mark()

    async def send(handle: Any) -> float:
        async with sem:
            sent = time.time()
            await handle.signal("side_effect", SIDE_EFFECT)
            return sent

    burst_began = time.time()
    await asyncio.gather(*(send(h) for h in handles))
    await worker.until(patients * (at_enrollment + 1), 600 + 2 * patients)
    progress(f"{side}: burst of {patients} events done")
    burst_done = max(times[at_enrollment] for times in worker.finished.values())

    sent_at: dict[str, float] = {}
    steady_began = time.time()
    for i, handle in enumerate(handles):
        await asyncio.sleep(max(0.0, steady_began + i / rate - time.time()))
        sent_at[handle.id] = time.time()
        await handle.signal("side_effect", SIDE_EFFECT)
    await worker.until(patients * (at_enrollment + 2), 600 + 2 * patients)
    latencies = [(worker.finished[wf][at_enrollment + 1] - at) * 1000 for wf, at in sent_at.items()]
    _, rss_open = await worker.mark()

    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 60)
    await reader
    return {"enrollments_per_s": patients / (enrolled - began), "events_per_s": patients / (burst_done - burst_began),
            "p50_ms": _percentile(latencies, 50), "p95_ms": _percentile(latencies, 95),
            "p99_ms": _percentile(latencies, 99), "cpu_ms_per_enrollment": (cpu1 - cpu0) / patients * 1000,
            "kb_per_cached": (rss_open - worker.at_ready[1]) / patients / 1024, "gc": worker.stats}


async def dev_server(patients: int, rate: float) -> dict[str, Any]:
    """Both sides on one dev server (search attributes registered), the floor first."""
    ring = KeyRing.generate("bench")
    # In memory: the disk is shared with other work on this machine, and both sides get the same server.
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"), search_attributes=sa.ALL,
                                                data_converter=data_converter(ring), dev_server_log_level="error")
    try:
        address = env.client.service_client.config.target_host
        return {side: await dev_server_side(env.client, address, ring, side, patients, rate)
                for side in ("floor", "pathway")}
    finally:
        await env.shutdown()


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several dev-server runs as one: each side's figures are the median over the runs, except the
    garbage collector's longest pauses, which are the longest of any run (a target is a limit)."""
    def combine(values: list[Any], key: str) -> Any:
        if isinstance(values[0], dict):
            return {k: combine([v[k] for v in values], k) for k in values[0]}
        if key.startswith("max_") or key == "pauses_over_100ms":
            return max(values)
        return statistics.median(values)
    return {side: combine([run[side] for run in runs], side) for side in runs[0]}


# --- pure core ------------------------------------------------------------------------------


def pure_core(seconds: float) -> dict[str, float]:
    """``bench/decide_core.py``: µs per decide, patient-years per second on one core."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "decide_core.py"), "--seconds", str(seconds)],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    per_call = re.search(r"decide: ([\d.]+) µs per call", out)
    years = re.search(r"(\d+) patient-years per second", out)
    if not per_call or not years:
        raise RuntimeError(f"bench/decide_core.py printed something else:\n{out}")
    return {"us_per_decide": float(per_call.group(1)), "patient_years_per_s": float(years.group(1))}


def cohort(patients: int) -> dict[str, float]:
    """``vcf cohort`` of ``patients`` synthetic patient-years on every core: patient-years per second."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([str(Path(sys.executable).parent / "vcf"), "cohort",
                               str(ROOT / "seeds" / "cohorts" / "default.json"), "--patients", str(patients),
                               "--seed", "1", "--out", tmp], capture_output=True, text=True, cwd=ROOT)
    found = re.search(r"([\d,]+) patient-years per second \(([\d,]+) per CPU-second", done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"vcf cohort failed or printed something else:\n{done.stderr[-2000:]}")
    return {"patient_years_per_s": float(found.group(1).replace(",", "")),
            "per_cpu_s": float(found.group(2).replace(",", "")), "patients": patients}


# --- the table ------------------------------------------------------------------------------


def figures(ts: dict[str, Any], process: dict[str, float], dev: dict[str, Any], core: dict[str, float],
            patients: int, simulated: dict[str, float]) -> list[Figure]:
    """Every figure with its target (issues 9 and 13), pathway beside floor."""
    floor, path = dev["floor"], dev["pathway"]

    def at_most(name: str, unit: str, f: float, p: float, times: float) -> Figure:
        return Figure(name, unit, f, p, f"≤ {times:g}x floor", p <= times * f)

    def at_least(name: str, unit: str, f: float, p: float, share: float) -> Figure:
        return Figure(name, unit, f, p, f"≥ {share:.0%} of floor", p >= share * f)

    return [
        Figure("history events, one patient-year", "events", ts["floor_events"], ts["pathway_events"], "≤ 500",
               ts["pathway_events"] <= 500),
        Figure("timers started, one patient-year", "timers", None, ts["timers"]),
        at_most("patient-year in process (time-skipping)", "s", ts["floor_s"], ts["pathway_s"], 1.5),
        at_most("patient-year, whole process", "s", process["floor"], process["pathway"], 1.3),
        at_least(f"enrollments per second ({patients} patients)", "/s", floor["enrollments_per_s"],
                 path["enrollments_per_s"], 0.8),
        at_least("events per second", "/s", floor["events_per_s"], path["events_per_s"], 0.8),
        Figure(f"event → order p50 ({patients} open)", "ms", floor["p50_ms"], path["p50_ms"]),
        Figure(f"event → order p95 ({patients} open)", "ms", floor["p95_ms"], path["p95_ms"]),
        at_most(f"event → order p99 ({patients} open)", "ms", floor["p99_ms"], path["p99_ms"], 1.5),
        at_most("worker memory per cached pathway", "KB", floor["kb_per_cached"], path["kb_per_cached"], 1.5),
        Figure("worker CPU per enrollment", "ms", floor["cpu_ms_per_enrollment"], path["cpu_ms_per_enrollment"]),
        Figure("full garbage collections", "", floor["gc"].get("full_collections"), path["gc"].get("full_collections")),
        Figure(f"longest GC pause ({patients} cached)", "ms", floor["gc"].get("max_pause_ms"),
               path["gc"].get("max_pause_ms"), "≤ 100 ms", path["gc"].get("max_pause_ms", 1e9) <= 100),
        Figure("longest GC pause, CPU time", "ms", floor["gc"].get("max_pause_cpu_ms"),
               path["gc"].get("max_pause_cpu_ms")),
        Figure("pure core: µs per decide", "µs", None, core["us_per_decide"],
               f"≥ 10x faster than {DECIDE_BEFORE_US:g} µs", core["us_per_decide"] * 10 <= DECIDE_BEFORE_US),
        Figure("pure core: patient-years per second", "/s", None, core["patient_years_per_s"]),
        Figure(f"cohort: patient-years per second ({simulated['patients']:,.0f}, all cores)", "/s", None,
               simulated["patient_years_per_s"], f"≥ {COHORT_TARGET:,}",
               simulated["patient_years_per_s"] >= COHORT_TARGET),
        Figure("cohort: patient-years per CPU-second", "/s", None, simulated["per_cpu_s"]),
    ]


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def table(rows: list[Figure], context: str) -> str:
    """The rows as a Markdown table."""
    lines = [context, "", "| figure | unit | floor | pathway | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r.ratio()
        met = "" if r.met is None else "met" if r.met else "NOT met"
        lines.append(f"| {r.name} | {r.unit} | {_num(r.floor)} | {_num(r.pathway)} | "
                     f"{'' if ratio is None else f'{ratio:.2f}x'} | {r.target} | {met} |")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    configure_runtime(core_level="ERROR")
    load = os.getloadavg()[0]
    out = os.dup(1)
    os.dup2(2, 1)  # the servers' banners go to stderr: stdout is the table (or the JSON) alone
    try:
        ts = await time_skipping(args.runs)
        progress("time-skipping, in process: done")
        process = whole_processes(args.runs, ts["actions"])
        progress("time-skipping, whole processes: done")
        dev = median_of_runs([await dev_server(args.patients, args.rate) for _ in range(args.dev_runs)])
        core = pure_core(args.core_seconds)
        simulated = cohort(args.cohort_patients)
        progress("cohort: done")
    finally:
        sys.stdout.flush()
        os.dup2(out, 1)
    rows = figures(ts, process, dev, core, args.patients, simulated)
    context = (f"pathway vs bare-SDK floor, same run: {os.cpu_count()} cores, load average {load:.1f} at start and "
               f"{os.getloadavg()[0]:.1f} at end, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
               f"time-skipping medians of {args.runs} runs; dev server {args.patients} patients, "
               + (f"medians of {args.dev_runs} runs (longest GC pauses: of any run), " if args.dev_runs > 1 else "") +
               f"steady events at {args.rate:g}/s")
    if args.json:
        print(json.dumps({"context": context, "figures": [{**r.__dict__, "ratio": r.ratio()} for r in rows],
                          "raw": {"time_skipping": ts, "process": process, "dev_server": dev, "core": core,
                                  "cohort": simulated}}, indent=1))
    else:
        print(table(rows, context))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000, help="pathways open at once on the dev server")
    parser.add_argument("--runs", type=int, default=3, help="time-skipping runs per side (median)")
    parser.add_argument("--dev-runs", type=int, default=1, help="dev-server runs (figures: medians)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="steady events per second for the latency (below both sides' throughput here)")
    parser.add_argument("--core-seconds", type=float, default=3.0)
    parser.add_argument("--cohort-patients", type=int, default=10_000, help="synthetic patients for vcf cohort")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    os._exit(0)
