"""One error shape for every answer that is not a success: ``{"error": ..., "detail": [...]}``.

``detail`` lists ``field: reason`` lines (the contract's wording) so a caller can fix the
request without reading server logs. Nothing in an error echoes a submitted value back.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("api")


class ApiError(Exception):
    """An answer other than success: HTTP status, a short message and field-level detail."""

    def __init__(self, status: int, error: str, detail: list[str] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail or []
        self.headers = headers


def error_response(status: int, error: str, detail: list[str] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every endpoint uses."""
    return JSONResponse({"error": error, "detail": detail or []}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure (ours, the framework's, a bug) to the one error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()]
        return error_response(422, "invalid request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "not found", 405: "method not allowed"}
        return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)), [],
                              getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        # The type only: an exception message may quote patient data.
        log.error("unhandled error", extra={"error_type": type(exc).__name__})
        return error_response(500, "internal error", [])
