"""``/healthz``: the process answers (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter

from api.models import Health
from api.openapi import errors

router = APIRouter(tags=["meta"])


@router.get("/healthz", operation_id="healthz", summary="Liveness (no auth)", response_description="The process is up",
            responses=errors())
async def healthz() -> Health:
    """Answers while the process runs; says nothing about Temporal."""
    return Health(ok=True)
