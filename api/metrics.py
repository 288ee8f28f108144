"""The API's request metrics: counts and latencies by method, route template and status.

Labels are route templates (``/v1/patients/{patient_id}``), never concrete paths, so no patient
or order id reaches Prometheus; methods outside HTTP's usual set are counted as ``other``. Each
app has its own registry (several apps may live in one test process). Served at ``GET /metrics``
(:mod:`api.routes.metrics`), in Prometheus text format.
"""

from __future__ import annotations

import time

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: a probe or a state read (milliseconds) up to a Bundle built under load (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestMetrics:
    """``vcf_api_requests_total`` and ``vcf_api_request_duration_seconds``, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vcf_api_requests", "HTTP requests answered, by method, route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.duration = Histogram("vcf_api_request_duration_seconds",
                                  "Time to answer an HTTP request, by method, route template and status",
                                  ["method", "route", "status"], buckets=BUCKETS, registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        labels = (method if method in METHODS else "other", route, str(status))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)

    def text(self) -> bytes:
        """Everything, in Prometheus text format."""
        return generate_latest(self.registry)


async def measure_requests(request: Request, call_next):
    """Count each request under its route template once it is answered (a request that raises
    counts as the 500 it gets)."""
    started, status = time.perf_counter(), 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = getattr(request.scope.get("route"), "path", "unmatched")
        request.app.state.request_metrics.observe(request.method, route, status, time.perf_counter() - started)
