"""Reading request bodies ourselves, so that every malformed body gets the one error shape.

Also the JSON schemas shown on /docs for those bodies (the contract's own models), since the
routes take the raw body rather than a typed parameter.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import TypeAdapter

from api.errors import ApiError
from pathway.contract import Enrollment, Event

MAX_BODY = 64 * 1024  # contract bodies are small; a huge one is a mistake or an attack
REF = "#/components/schemas/{model}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_large() -> ApiError:
    return ApiError(413, "request body too large", [f"body: at most {MAX_BODY} bytes"])


async def _read_capped(request: Request) -> bytes:
    """The body, refused (413) before more than ``MAX_BODY`` bytes are read or held."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(422, "invalid request", ["Content-Length: expected a byte count"])
        if int(declared) > MAX_BODY:
            raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:  # a chunked body, or one longer than it said
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON value; 413 if too big, 422 naming ``body`` if missing or not JSON."""
    raw = await _read_capped(request)
    if not raw.strip():
        if required:
            raise ApiError(422, "invalid request", ["body: required (a JSON object)"])
        return None
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid request", [f"body: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(422, "invalid request", [f"body: not valid JSON ({type(exc).__name__})"]) from None


def _schema(adapter: TypeAdapter) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = adapter.json_schema(ref_template=REF)
    return {k: v for k, v in schema.items() if k != "$defs"}, schema.get("$defs", {})


ENROLLMENT_SCHEMA, _ENROLLMENT_DEFS = _schema(TypeAdapter(Enrollment))
EVENT_SCHEMA, _EVENT_DEFS = _schema(TypeAdapter(Event))
SCHEMA_DEFS: dict[str, Any] = {"Enrollment": ENROLLMENT_SCHEMA, **_ENROLLMENT_DEFS, **_EVENT_DEFS}

OBSERVATION_EXAMPLE = {
    "resourceType": "Observation", "id": "obs-pain-0001", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3",
                         "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}]},
    "subject": {"reference": "Patient/pt-0001"}, "effectiveDateTime": "2026-01-31T09:00:00Z", "valueInteger": 6,
}


def request_body(schema: dict[str, Any], example: Any, media: str = "application/json") -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON body with its schema and an example."""
    return {"requestBody": {"required": True, "content": {media: {"schema": schema, "example": example}}}}
