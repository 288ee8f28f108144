"""CORS for the codec routes only, and only for the Temporal Web UI's origins.

The UI decodes payloads from the operator's browser, so its page (``http://127.0.0.1:8233`` in
development) calls ``/codec/decode`` across origins: first a preflight ``OPTIONS`` naming the
method and headers it will send, then the ``POST``. For a listed origin the preflight is answered
here and the answer carries ``Access-Control-Allow-Origin``; a request under ``/codec/`` from any
other browser origin is refused (403) before it reaches a route, preflight or not, so no other
page can use the codec (the dev server's loopback codec included). Requests without an ``Origin``
(the ``temporal`` CLI, scripts) are not browser requests and pass. No other route answers CORS.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

ALLOWED_METHODS = "POST"
ALLOWED_HEADERS = "authorization, content-type, x-namespace"
PREFLIGHT_MAX_AGE = "600"


class CodecCors:
    """ASGI middleware: CORS under ``prefix`` for ``origins`` only."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str], prefix: str = "/codec/"):
        self.app = app
        self.origins = frozenset(origins)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if origin not in self.origins:
            refused = error_response(403, "origin not allowed", ["Origin: not an origin allowed to use the codec"])
            await refused(scope, receive, send)
            return
        allow = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = Response(status_code=204, headers={
                **allow, "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS, "Access-Control-Max-Age": PREFLIGHT_MAX_AGE})
            await preflight(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(allow)
            await send(message)

        await self.app(scope, receive, with_cors)
