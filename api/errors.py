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
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from activities.database import is_unavailable
from pathway.contract import UNKNOWN_FIELD, safe_location, safe_message

log = logging.getLogger("api")
INTERNAL_ERROR = {"error": "internal error", "detail": []}
CLIENT_CLOSED = 499  # nginx's "client closed request": logged, never sent (no one is there to read it)
DATABASE_DETAIL = "database: busy or unavailable; retry later"


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
    """Pydantic errors as ``field: reason`` lines (``whole`` names an error without a location).
    Nothing submitted is quoted: a key that is not a plain name is "an unknown field", and a
    message that would repeat a value is replaced (:func:`pathway.contract.describe`'s rules)."""
    lines = []
    for e in errors:
        loc, safe = safe_location(e["loc"])
        lines.append(f"{'.'.join(loc) or whole}: {safe_message(e) if safe else UNKNOWN_FIELD}")
    return list(dict.fromkeys(lines))


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path: Starlette's own ``Allow`` names only the first
    route whose path matches (a resource read and updated by two routes would lose one). Each
    method is tried against the routes as the router matches them (included routers too)."""
    routes = request.app.router.routes
    allowed = [method for method in HTTP_METHODS
               if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)]
    return ", ".join(allowed)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is there but cannot be used just now (the service is
    unavailable: 503, and the same request again later is safe, events being idempotent)."""
    return is_unavailable(exc)


class CatchAll:
    """Outermost ASGI layer: an unhandled exception becomes the 500 JSON body, here (or the 503
    of an unavailable database, wherever it was met: a route or the audit record of its answer).

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
            if database_unavailable(exc):  # a route's read or write, or the audit record after it
                log.warning("database unavailable", extra={"error_type": type(exc).__name__})
                answer = error_response(503, "the database is unavailable; retry later", [DATABASE_DETAIL],
                                        {"Retry-After": "1"})
            elif temporal_never_reached(exc):
                log.warning("temporal unavailable", extra={"error_type": type(exc).__name__})
                answer = error_response(503, "the workflow service is unavailable; retry later",
                                        ["temporal: UNAVAILABLE"], {"Retry-After": "1"})
            else:
                log.error("unhandled error", extra={"error_type": type(exc).__name__})
                answer = JSONResponse(INTERNAL_ERROR, status_code=500)
            if not started:  # otherwise the answer is half sent; the connection just ends
                await answer(scope, receive, send)


def temporal_never_reached(exc: BaseException) -> bool:
    """Whether ``exc`` is the API's lazy Temporal client failing its first connection (the server
    was down when the API started, and still is); an RPC error once connected is answered where
    the call is made."""
    return isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect")


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

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _: ClientDisconnect) -> Response:
        # The client went away before its body was whole (or the server cut off a slow one):
        # nothing to answer, and nothing wrong with the API. Logged as such, not as a 500.
        route = request.scope.get("route")
        log.info("client disconnected", extra={"route": getattr(route, "path", "unmatched")})
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "not found", 405: "method not allowed"}
        # What was wrong, without repeating the path (it may hold a patient id).
        details = {404: ["path: no such endpoint (GET /openapi.json lists them)"],
                   405: [f"method: {request.method} is not one this path takes"]}
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)),
                              details.get(exc.status_code, []), headers)

    app.add_middleware(CatchAll)
