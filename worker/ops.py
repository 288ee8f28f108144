"""The worker's operations port (``VCF_METRICS_PORT``): ``/metrics``, ``/healthz``, ``/readyz``.

The SDK's Prometheus exporter (``PrometheusConfig`` on the process's Runtime) answers every
path with its metrics and cannot tell a probe anything, so it listens on a loopback port of its
own (:func:`exporter_address`) and this small server passes its text through, unchanged, on
``/metrics`` — Temporal's metrics and the pathway's (:mod:`workflows.metrics`) — and answers the
probes: ``/healthz`` while the process runs; ``/readyz`` 200 while the Temporal server and the
order book answer and the worker is not draining, else 503 naming each reason. Nothing here
carries patient data: metric labels are kinds and reasons, probe answers name components.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client

log = logging.getLogger("worker")

CHECK_TIMEOUT = 2.0  # seconds for each dependency to answer a readiness probe
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class OpsPortError(RuntimeError):
    """The operations port could not be opened (in use, or not allowed)."""


def exporter_address() -> str:
    """A free loopback ``host:port`` for the SDK's own exporter (only this server reads it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class Readiness:
    """What ``/readyz`` checks: the Temporal server, the order book, and that no drain has begun."""

    def __init__(self, client: Client, ping_database: Callable[[], None]):
        self.client, self.ping_database = client, ping_database
        self.draining = False

    async def problems(self) -> list[str]:
        """Why the worker cannot take work now (empty: ready)."""
        found = ["worker: draining (shutting down)"] if self.draining else []
        try:
            await asyncio.wait_for(asyncio.to_thread(self.ping_database), CHECK_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; its type says which
            found.append(f"database: not answering ({type(exc).__name__})")
        try:
            healthy = await asyncio.wait_for(self.client.service_client.check_health(
                timeout=timedelta(seconds=CHECK_TIMEOUT)), CHECK_TIMEOUT + 0.5)
            reason = "not serving"
        except Exception as exc:  # noqa: BLE001
            healthy, reason = False, type(exc).__name__
        if not healthy:
            found.append(f"temporal: not answering ({reason})")
        return found


def ops_app(exporter: str, readiness: Readiness) -> Starlette:
    """The three routes over the SDK exporter at ``exporter`` (``host:port``)."""
    http = httpx.AsyncClient(base_url=f"http://{exporter}", timeout=5.0)

    async def metrics(request: Request) -> Response:
        try:
            scraped = await http.get("/metrics")
            scraped.raise_for_status()
        except httpx.HTTPError as exc:
            return JSONResponse({"error": "metrics unavailable", "detail": [type(exc).__name__]}, status_code=503)
        return Response(scraped.content, media_type=PROMETHEUS_TEXT)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        problems = await readiness.problems()
        if problems:
            return JSONResponse({"error": "not ready", "detail": problems}, status_code=503)
        return JSONResponse({"ready": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await http.aclose()

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz)],
                     lifespan=lifespan)


class _QuietServer(uvicorn.Server):
    """Leaves SIGTERM/SIGINT to the worker, which drains before this server stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Starlette, host: str, port: int) -> AsyncIterator[None]:
    """Serve ``app`` on ``host:port`` for the duration of the block; OpsPortError if it cannot bind."""
    server = _QuietServer(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                         lifespan="on"))

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; the worker says why instead
            raise OpsPortError(f"the metrics and health endpoint could not start on {host}:{port} "
                               "(is the port in use? VCF_METRICS_PORT)") from None

    task = asyncio.ensure_future(run())
    while not server.started:
        if task.done():
            task.result()
            raise OpsPortError(f"the metrics and health endpoint stopped on {host}:{port}")
        await asyncio.sleep(0.05)
    log.info("metrics and health endpoint listening", extra={"host": host, "port": port})
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
