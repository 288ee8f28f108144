"""The load: enrollments and events for many patients through the HTTP API at a steady rate, as
a care system would send them, every request and its answer written to a journal.

Each event carries its own ``event_id`` (the contract's idempotency key), so a request that got
no answer, or a 503 while the workflow service or the database was away, is sent again as it was:
applied once however often it arrives. An answer other than 503 is final.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pathway.contract import FRACTURE_LEVELS

RETRYABLE = {503}
ACKNOWLEDGED = {200, 201, 202}


@dataclass
class PatientScript:
    """One synthetic patient: the enrollment and the events the care system will send."""

    enrollment: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def patient_id(self) -> str:
        return str(self.enrollment["id"])


def _event(rng: random.Random) -> dict[str, Any]:
    """One clinically ordinary event; none ends the pathway (no malignant MRI, no withdrawal)."""
    kind = rng.choices(["pain", "mri", "radiograph", "dxa", "mobility", "pulmonary", "neuro", "side_effect"],
                       weights=[10, 2, 2, 1, 1, 1, 1, 1])[0]
    if kind == "pain":
        return {"type": "pain", "nrs": rng.randint(0, 10)}
    if kind == "mri":
        return {"type": "mri", "etiology": rng.choice(["osteoporotic", "osteoporotic", "indeterminate"])}
    if kind == "radiograph":
        return {"type": "radiograph", "height_loss_pct": rng.randint(10, 60)}
    if kind == "dxa":
        return {"type": "dxa", "t_score": round(rng.uniform(-4, 0), 1)}
    if kind == "mobility":
        return {"type": "mobility", "bed_bound": rng.random() < 0.3}
    if kind == "pulmonary":
        return {"type": "pulmonary", "dysfunction": rng.random() < 0.3}
    if kind == "neuro":
        return {"type": "neuro", "deficit": rng.random() < 0.2}
    return {"type": "side_effect", "drug": "calcitonin", "effect": "nausea"}


def patient_scripts(count: int, events_each: int, seed: int, prefix: str = "pt-drill") -> list[PatientScript]:
    """``count`` patients with ``events_each`` events each, the same for the same seed."""
    rng = random.Random(seed)
    scripts = []
    for n in range(count):
        pid = f"{prefix}-{seed}-{n:04d}"
        enrollment = {"id": pid, "fracture_level": rng.choice(FRACTURE_LEVELS), "height_loss_pct": rng.randint(5, 70),
                      "pain_nrs": rng.randint(2, 10), "onset_days_before_enrollment": rng.randint(0, 10)}
        events = [_event(rng) | {"event_id": f"{pid}-e{i:03d}"} for i in range(events_each)]
        scripts.append(PatientScript(enrollment, events))
    return scripts


@dataclass
class Sent:
    """One logical request and how it ended (after its retries)."""

    patient_id: str
    kind: str  # "enroll" or "event"
    event_id: str | None
    attempts: int = 0
    status: int | None = None  # the final answer's status; None: never answered
    statuses: list[int | None] = field(default_factory=list)  # every attempt's (None: no answer)

    @property
    def acknowledged(self) -> bool:
        return self.status in ACKNOWLEDGED


class Journal:
    """Every attempt, appended as one JSON line; the logical requests in memory."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.sent: list[Sent] = []
        self.started = time.monotonic()

    def attempt(self, sent: Sent, status: int | None, answer: Any) -> None:
        sent.attempts += 1
        sent.statuses.append(status)
        line = {"t": round(time.monotonic() - self.started, 3), "patient": sent.patient_id, "kind": sent.kind,
                "event_id": sent.event_id, "attempt": sent.attempts, "status": status, "answer": answer}
        self._file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self._file.close()


class Load:
    """Sends the scripts at ``rate`` requests a second (a steady clock; retries go beside it)."""

    def __init__(self, http: httpx.AsyncClient, journal: Journal, rate: float, give_up_after: float = 180.0):
        self.http, self.journal, self.rate, self.give_up_after = http, journal, rate, give_up_after
        self._next_slot = 0.0

    async def _slot(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(self._next_slot, now)
        self._next_slot = slot + 1 / self.rate
        await asyncio.sleep(slot - now)

    async def send(self, sent: Sent, path: str, body: dict[str, Any]) -> Sent:
        """POST ``body`` until it is answered with anything but 503 (same body: same event id)."""
        self.journal.sent.append(sent)
        await self._slot()
        deadline = time.monotonic() + self.give_up_after
        pause = 0.5
        while True:
            try:
                response = await self.http.post(path, json=body)
                status, answer = response.status_code, _answer(response)
            except httpx.TransportError as exc:
                status, answer = None, type(exc).__name__
            self.journal.attempt(sent, status, answer)
            sent.status = status
            if (status is not None and status not in RETRYABLE) or time.monotonic() > deadline:
                return sent
            await asyncio.sleep(pause)
            pause = min(pause * 2, 4.0)

    async def patient(self, script: PatientScript) -> None:
        """Enroll, then send the events one after another (a later one never overtakes)."""
        enrolled = await self.send(Sent(script.patient_id, "enroll", None), "/v1/patients", script.enrollment)
        if not enrolled.acknowledged:
            return
        for event in script.events:
            # Observed now: the event's pathway day is then exact, and the verdict can replay it.
            observed = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            await self.send(Sent(script.patient_id, "event", event["event_id"]),
                            f"/v1/patients/{script.patient_id}/events", event | {"observed_at": observed})

    async def run(self, scripts: list[PatientScript]) -> None:
        """Every patient at once; the rate clock spaces their requests."""
        await asyncio.gather(*(self.patient(s) for s in scripts))


def _answer(response: httpx.Response) -> Any:
    """What to keep of an answer: an error's body whole, a success's event id or status."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if response.is_success and isinstance(body, dict):
        return {k: body[k] for k in ("event_id", "duplicate", "created") if k in body}
    return body
