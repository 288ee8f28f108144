"""``GET /metrics``: the API's request metrics for Prometheus (no token; no patient data in them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["meta"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", operation_id="metrics", summary="Request metrics (no auth)", response_class=Response,
            responses={200: {"description": "Prometheus text format: `vcf_api_requests_total` and "
                                            "`vcf_api_request_duration_seconds`, by method, route template "
                                            "and status",
                              "content": {PROMETHEUS_TEXT: {"schema": {"type": "string"}}}}})
async def metrics(request: Request) -> Response:
    """Counts and latencies of the requests answered so far, labelled by route template (never a
    concrete path: ids stay out)."""
    return Response(request.app.state.request_metrics.text(), media_type=PROMETHEUS_TEXT)
