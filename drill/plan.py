"""How big a drill is: the full one (``make drill``) and the short one (``make test``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Plan:
    """The drill's sizes, rates and mishaps; every random choice follows ``seed``."""

    patients: int = 200
    events_each: int = 8
    rate: float = 12.0  # requests a second, steady
    worker_kills: int = 20
    server_restarts: int = 2
    outage_s: float = 20.0
    suggest_continue_as_new: int = 40  # history events before the server suggests continue-as-new
    flood_requests: int = 10_000
    settle_s: float = 600.0  # after the load: how long the system may take to apply what it acknowledged
    seed: int = 1

    @property
    def span(self) -> float:
        """Seconds the load takes at its rate (the mishaps fall within it)."""
        return self.patients * (1 + self.events_each) / self.rate

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


FULL = Plan()
# About a minute of load and a minute of checks: 20 patients, 3 kills, one server restart, a short outage.
SHORT = Plan(patients=20, events_each=6, rate=6.0, worker_kills=3, server_restarts=1, outage_s=12.0,
             flood_requests=300, settle_s=180.0)


def sized(base: Plan, **overrides: Any) -> Plan:
    """``base`` with the given fields changed (None: unchanged)."""
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
