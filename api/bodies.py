"""Request bodies, read here and capped, so that every malformed body gets the one error shape.

The routes take the parsed JSON through :func:`json_body` (a dependency) rather than a typed
parameter: a typed body would be read whole before any size check, and its errors would not
name the contract's fields the contract's way. Their schemas on /docs: :mod:`api.openapi`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from api.errors import ApiError
from pathway.contract import SAFE_FIELD_NAME
from pathway.contract_json import DuplicateKey, loads

MAX_BODY = 64 * 1024  # contract bodies are small; a huge one is a mistake or an attack


class _NoBody:
    """The request had no body at all, as opposed to a JSON ``null``."""

    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY: Any = _NoBody()


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


async def json_body(request: Request) -> Any:
    """The request's JSON value, or :data:`NO_BODY`; 413 if too big, 422 naming ``body`` if not JSON
    (or the key, if an object gives one key twice)."""
    raw = await _read_capped(request)
    if not raw.strip():
        return NO_BODY
    try:
        value = loads(raw)
    except DuplicateKey as exc:
        field = exc.key if SAFE_FIELD_NAME.fullmatch(exc.key) else "body"
        raise ApiError(422, "invalid request", [f"{field}: a key given more than once in one JSON object"]) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ApiError(422, "invalid request", [f"body: not valid JSON ({where})"]) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(422, "invalid request", [f"body: not valid JSON ({type(exc).__name__})"]) from None
    return value


def required(body: Any) -> Any:
    """The body, or 422 naming ``body`` when there was none."""
    if body is NO_BODY:
        raise ApiError(422, "invalid request", ["body: required (a JSON object)"])
    return body
