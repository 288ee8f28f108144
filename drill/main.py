"""``vcf-drill`` (``make drill``): the whole system on loopback, broken on purpose while it works,
then checked: nothing acknowledged lost, nothing ordered twice or missing, no pathway stuck, no 5xx.

    vcf-drill                 # the full drill: 200 patients, 20 worker kills, 2 server restarts, an outage, a flood
    vcf-drill --short         # the one make test runs: 20 patients, 3 kills, 1 restart, a short outage
    vcf-drill --patients 50 --seed 7 --out .data/drill

Writes ``result.json`` (the figures), ``requests.jsonl`` (every request and answer) and the
processes' logs into ``--out``; prints the figures; exits 1 on any loss, duplicate, missing order,
stuck pathway or 5xx, 2 if the system could not be brought up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from drill.chaos import Chaos, outage_for, schedule
from drill.load import Journal, Load, Sent, patient_scripts
from drill.plan import FULL, SHORT, Plan, sized
from drill.processes import Supervisor
from drill.verdict import PatientVerdict, Verdict, acknowledged_events, answer_counts, judge_patient, workflow_troubles
from pathway.guideline import load_definition
from worker.data_dir import private_umask
from workflows.models import workflow_id_for

log = logging.getLogger("drill")
FLOOD_TARGETS = 3
OUTAGE_EVENTS = 5  # patients given an event (and so an order) while the order book is away
JUDGED_AT_ONCE = 8  # patients read at once for the verdict


async def _settle(http: httpx.AsyncClient, client: Client, acknowledged: dict[str, set[str]],
                  timeout: float) -> float:
    """Wait until every acknowledged event is in its pathway's timeline and no order write is still
    being retried (after the outage, backoff may take a while), or ``timeout``; return the wait."""
    start = time.monotonic()
    waiting = set(acknowledged)
    while waiting and time.monotonic() - start < timeout:
        for pid in list(waiting):
            try:
                response = await http.get(f"/v1/patients/{pid}/timeline")
            except httpx.TransportError:
                continue
            if response.status_code != 200 or not response.json().get("live"):
                continue
            entries = response.json()["entries"]
            seen = {e["data"].get("event_id") for e in entries if e["entry"] in ("event", "rejected")}
            if acknowledged[pid] <= seen and not await workflow_troubles(client, pid):
                waiting.discard(pid)
        if waiting:
            await asyncio.sleep(1.0)
    return time.monotonic() - start


async def _orders_due_now(supervisor: Supervisor, journal: Journal) -> None:
    """While the order book is away, a side effect reported for a few enrolled patients straight to
    the workflow service (as a second intake would; the API's writes wait on the same lock), so
    that orders fall due during the outage. Recorded as acknowledged once the server holds them."""
    enrolled = [s.patient_id for s in journal.sent if s.kind == "enroll" and s.acknowledged][:OUTAGE_EVENTS]
    assert supervisor.client is not None
    for pid in enrolled:
        event_id = f"{pid}-during-outage"
        sent = Sent(pid, "event", event_id)
        journal.sent.append(sent)
        payload = {"type": "side_effect", "drug": "calcitonin", "effect": "dizziness", "event_id": event_id,
                   "observed_at": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")}
        try:
            await supervisor.client.get_workflow_handle(workflow_id_for(pid)).signal("event", payload)
            journal.attempt(sent, 202, "signalled")
            sent.status = 202
        except RPCError as err:
            journal.attempt(sent, None, err.status.name)


def _outage_in_logs(supervisor: Supervisor) -> int:
    """Order writes the workers logged as failed for a locked database (the outage, as the logs show it)."""
    count = 0
    for path in supervisor.logs("worker"):
        for line in path.read_text(errors="replace").splitlines():
            if "Completing activity as failed" in line and "database is locked" in line:
                count += 1
    return count


async def _pathways_take_events(http: httpx.AsyncClient, supervisor: Supervisor, patients: list[str]) -> list[str]:
    """After the flood: each aimed-at pathway still applies a valid event (or ended for a reason of its own)."""
    blocked = []
    for n, pid in enumerate(patients):
        event_id = f"{pid}-after-flood-{n}"
        answer = await http.post(f"/v1/patients/{pid}/events", json={"type": "pain", "nrs": 4, "event_id": event_id})
        if answer.status_code == 409:  # the flood may have withdrawn it: ended is not blocked
            continue
        applied = False
        for _ in range(60):
            timeline = (await http.get(f"/v1/patients/{pid}/timeline")).json()
            if any(e["data"].get("event_id") == event_id for e in timeline.get("entries", [])):
                applied = True
                break
            await asyncio.sleep(0.5)
        assert supervisor.client is not None
        troubles = await workflow_troubles(supervisor.client, pid)
        if answer.status_code != 202 or not applied or troubles:
            blocked.append(pid)
    return blocked


async def run(plan: Plan, out: Path) -> dict[str, Any]:
    """One drill; returns the figures (also written to ``out/result.json``)."""
    if out.exists():
        shutil.rmtree(out)
    supervisor = Supervisor(out, plan.suggest_continue_as_new)
    outage = outage_for(os.environ.get("VCF_DATABASE_URL"), supervisor.order_book_path)
    started_at = datetime.now(UTC)
    figures: dict[str, Any] = {}
    try:
        await supervisor.start()
        journal = Journal(out / "requests.jsonl")
        async with httpx.AsyncClient(base_url=supervisor.api_url, timeout=30,
                                     headers={"Authorization": f"Bearer {supervisor.token}"}) as http:
            scripts = patient_scripts(plan.patients, plan.events_each, plan.seed)
            chaos = Chaos(supervisor, outage, schedule(plan.seed, plan.span, plan.worker_kills, plan.server_restarts,
                                                       plan.outage_s),
                          while_away=lambda: _orders_due_now(supervisor, journal))
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            done = asyncio.Event()
            watch = asyncio.create_task(supervisor.watch(done))
            await asyncio.gather(Load(http, journal, plan.rate).run(scripts), chaos.run(t0))
            load_s = loop.time() - t0
            journal.close()
            acknowledged = acknowledged_events(journal)
            enrolled = {s.patient_id: s.enrollment for s in scripts
                        if any(x.kind == "enroll" and x.acknowledged and x.patient_id == s.patient_id
                               for x in journal.sent)}
            assert supervisor.client is not None
            settle_s = await _settle(http, supervisor.client, {p: acknowledged.get(p, set()) for p in enrolled},
                                     plan.settle_s)
            done.set()
            await watch
            defn = load_definition()
            judging = asyncio.Semaphore(JUDGED_AT_ONCE)

            async def judge(pid: str) -> PatientVerdict:
                async with judging:
                    assert supervisor.client is not None
                    return await judge_patient(http, supervisor.client, defn, enrolled[pid],
                                               acknowledged.get(pid, set()))

            judged = list(await asyncio.gather(*(judge(p) for p in enrolled)))
            verdict = Verdict(judged, *answer_counts(journal))
            continued = await supervisor.client.count_workflows('ExecutionStatus="ContinuedAsNew"')
            figures = {**verdict.figures(), "patients_scripted": plan.patients,
                       "worker_kills": supervisor.worker_kills, "server_restarts": supervisor.server_restarts,
                       "workers_exited_by_themselves": supervisor.workers_exited,
                       "outage_s": round(chaos.outage_s, 1),
                       "outage_failures_logged": _outage_in_logs(supervisor),
                       "continued_as_new": continued.count, "load_s": round(load_s, 1),
                       "settle_s": round(settle_s, 1), "chaos": chaos.done}
            flood_ok = True
            if plan.flood_requests:
                from drill.flood import flood  # schemathesis and hypothesis: the test extras

                targets = list(enrolled)[:FLOOD_TARGETS]
                flood_start = time.monotonic()
                result = await asyncio.to_thread(flood, supervisor.api_url, supervisor.token, targets,
                                                 plan.flood_requests, plan.seed)
                figures["flood_s"] = round(time.monotonic() - flood_start, 1)
                blocked = await _pathways_take_events(http, supervisor, targets)
                figures |= {**result.figures(), "flood_blocked_pathways": len(blocked),
                            "flood_examples": {"server_errors": result.server_errors[:10],
                                               "errors_not_naming_field": result.unnamed_errors[:10]}}
                flood_ok = not (result.server_errors or result.unnamed_errors or result.unanswered or blocked)
            figures |= {"passed": verdict.passed and flood_ok, "failures": verdict.details(),
                        "plan": plan.as_dict(), "started_at": started_at.isoformat(timespec="seconds"),
                        "wall_s": round((datetime.now(UTC) - started_at).total_seconds(), 1),
                        "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end"}
    finally:
        supervisor.stop()
    (out / "result.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


SUMMARY = ("patients", "events_acknowledged", "events_applied", "lost", "applied_twice", "duplicated_orders",
           "missing_orders", "stuck", "server_errors", "unavailable_answers", "unanswered_requests",
           "worker_kills", "server_restarts", "workers_exited_by_themselves", "outage_s", "outage_failures_logged",
           "continued_as_new",
           "flood_requests", "flood_server_errors", "flood_errors_not_naming_field", "flood_unanswered",
           "flood_blocked_pathways", "flood_s", "load_s", "settle_s", "wall_s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vcf-drill", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short drill of make test")
    parser.add_argument("--patients", type=int)
    parser.add_argument("--events-each", type=int)
    parser.add_argument("--rate", type=float, help="requests a second")
    parser.add_argument("--worker-kills", type=int)
    parser.add_argument("--server-restarts", type=int)
    parser.add_argument("--outage-s", type=float)
    parser.add_argument("--flood-requests", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", type=Path, default=Path(".data/drill"), help="results and logs (emptied first)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    plan = sized(SHORT if args.short else FULL, patients=args.patients, events_each=args.events_each, rate=args.rate,
                 worker_kills=args.worker_kills, server_restarts=args.server_restarts, outage_s=args.outage_s,
                 flood_requests=args.flood_requests, seed=args.seed)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    private_umask()  # the logs and the journal name patients (synthetic ones, but still): owner only
    print(f"drill: {plan.patients} patients x {plan.events_each} events at {plan.rate:g}/s (~{plan.span:.0f}s), "
          f"{plan.worker_kills} worker kills, {plan.server_restarts} server restarts, {plan.outage_s:g}s outage, "
          f"{plan.flood_requests} flood requests; seed {plan.seed}; out {args.out}", flush=True)
    try:
        figures = asyncio.run(run(plan, args.out))
    except RuntimeError as exc:
        print(f"drill: could not run: {exc}", file=sys.stderr)
        sys.stdout.flush()
        os._exit(2)
    for chaos_step in figures.get("chaos", []):
        print(f"  {chaos_step}")
    for key in SUMMARY:
        if key in figures:
            print(f"{key:>32}: {figures[key]}")
    if figures.get("failures"):
        print("failures: " + json.dumps(figures["failures"])[:2000])
    print("PASSED" if figures.get("passed") else "FAILED", flush=True)
    sys.stderr.flush()
    os._exit(0 if figures.get("passed") else 1)  # no interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
