"""One error shape for every answer that is not a success: ``{"error": ..., "detail": [...]}``.

``detail`` lists ``field: reason`` lines (the contract's wording) so a caller can fix the
request without reading server logs. Nothing in an error echoes a submitted value back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("api")
INTERNAL_ERROR = {"error": "internal error", "detail": []}


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


def field_errors(errors: Iterable[dict[str, Any]], whole: str = "body") -> list[str]:
    """Pydantic errors as ``field: reason`` lines (``whole`` names an error without a location)."""
    return [f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}" for e in errors]


class CatchAll:
    """Outermost ASGI layer: an unhandled exception becomes the 500 JSON body, here.

    Starlette's own handler for ``Exception`` answers and then re-raises, so uvicorn would log
    a traceback whose message may quote what the client sent. This logs the type only and
    swallows the exception.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - the point of this layer
            log.error("unhandled error", extra={"error_type": type(exc).__name__})
            if not started:  # otherwise the answer is half sent; the connection just ends
                await JSONResponse(INTERNAL_ERROR, status_code=500)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure (ours, the framework's) to the one error shape.

    Call it after adding the app's other middleware: :class:`CatchAll` must be the outermost.
    """

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid request", field_errors(exc.errors(), "request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "not found", 405: "method not allowed"}
        return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)), [],
                              getattr(exc, "headers", None))

    app.add_middleware(CatchAll)
