"""How busy the API is: requests in flight, counted by an ASGI layer, for ``/readyz``.

A load balancer that sees ``/readyz`` answer 503 sends new work elsewhere until the API has
caught up, instead of queueing it behind requests the API is still serving.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

# Probes and scrapes are not load: they must answer while the API is busy.
UNCOUNTED = ("/healthz", "/readyz", "/metrics")


class Load:
    """Requests being served now, and how many the API takes before it says it is saturated."""

    def __init__(self, max_in_flight: int):
        if max_in_flight < 1:
            raise ValueError("max_in_flight: at least 1")
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    @property
    def saturated(self) -> bool:
        """More requests in flight than the configured limit."""
        return self.in_flight > self.max_in_flight


class CountInFlight:
    """ASGI layer counting the HTTP requests in progress (probes aside) into a :class:`Load`."""

    def __init__(self, app: ASGIApp, load: Load):
        self.app = app
        self.load = load

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNCOUNTED:
            await self.app(scope, receive, send)
            return
        self.load.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.load.in_flight -= 1
