"""``/healthz``: the process answers; ``/readyz``: it can serve (no token needed for either)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Request

from api.errors import ApiError
from api.models import Health, Readiness
from api.openapi import errors
from api.records import in_thread

CHECK_TIMEOUT = 2.0  # seconds for each dependency to answer

router = APIRouter(tags=["meta"])


@router.get("/healthz", operation_id="healthz", summary="Liveness (no auth)", response_description="The process is up",
            responses=errors())
async def healthz() -> Health:
    """Answers while the process runs; says nothing about Temporal."""
    return Health(ok=True)


@router.get("/readyz", operation_id="readyz", summary="Readiness (no auth)",
            response_description="Ready: the workflow service and the database answer, and the API is not saturated",
            responses={503: {**errors(503)[503], "description": "not ready; `detail` says why (temporal, database, "
                                                                 "load)"}, **errors()})
async def readyz(request: Request) -> Readiness:
    """200 while the Temporal server and the database answer (within 2 s each) and no more
    requests are in flight than the configured limit (``VCF_API_MAX_IN_FLIGHT``); else 503
    naming each reason. For a load balancer: send new work elsewhere while it is 503."""
    services = request.app.state.services
    load = services.load
    in_flight = load.in_flight
    problems = []
    if load.saturated:
        problems.append(f"load: {in_flight} requests in flight (limit {load.max_in_flight})")
    try:
        await asyncio.wait_for(in_thread(services.registry.ping), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; its type says which
        problems.append(f"database: not answering ({type(exc).__name__})")
    try:
        healthy = await asyncio.wait_for(services.pathways.client.service_client.check_health(
            timeout=timedelta(seconds=CHECK_TIMEOUT)), CHECK_TIMEOUT + 0.5)
    except Exception as exc:  # noqa: BLE001
        healthy, reason = False, type(exc).__name__
    else:
        reason = "not serving"
    if not healthy:
        problems.append(f"temporal: not answering ({reason})")
    if problems:
        raise ApiError(503, "not ready", problems)
    return Readiness(ready=True, in_flight=in_flight, max_in_flight=load.max_in_flight)
