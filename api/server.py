"""The HTTP server's own limits: how long a client may take to send a request, how many
connections are served at once, how large a request head may be.

uvicorn bounds the idle time between two requests on a connection (``timeout_keep_alive``), the
number of connections and requests at once (``limit_concurrency``: above it, new requests get a
plain 503) and the size of a request head still arriving (h11's ``max_incomplete_event_size``;
:class:`GuardedH11` also refuses, 431, a head over that size that arrives whole). It has no limit
on how long a client may take to *send* a request: a client trickling its headers or its body a
byte at a time would hold a connection (and a request in the app) for ever. :class:`GuardedH11`
adds the two clocks it lacks, each running from the first byte and never reset by more bytes:

- the head (request line and headers) must be whole within ``header_timeout`` seconds (also on
  a new connection that sends nothing);
- the body, within ``body_timeout`` seconds of the head.

A client past either limit is disconnected; the app, if it was waiting for the body, sees the
client gone (:mod:`api.errors` logs it as such).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from worker.settings import Settings

log = logging.getLogger("api")


def _refusal(status: bytes, error: str, detail: str) -> bytes:
    """A whole answer, in the API's one error shape, for a request refused before it reached the app."""
    body = json.dumps({"error": error, "detail": [detail]}).encode()
    return (b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(body), body))


TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", "request head too large",
                     "headers: the request line and headers are too large")
MALFORMED = _refusal(b"400 Bad Request", "bad request", "request: not a valid HTTP/1.1 request")


@dataclass(frozen=True)
class ServerLimits:
    """Timeouts in seconds, sizes in bytes (defaults: :class:`worker.settings.Settings`)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 100
    max_header_bytes: int = 16 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        """The limits the environment configures."""
        return cls(header_timeout=settings.api_header_timeout, body_timeout=settings.api_body_timeout,
                   keep_alive_timeout=settings.api_keep_alive_timeout, max_connections=settings.api_max_connections,
                   max_header_bytes=settings.api_max_header_bytes)


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head and one for its body."""

    limits = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "head" or "body"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self._expect("head")  # a connection that sends nothing is cut off as one that sends slowly

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            return
        super().data_received(data)
        self._follow()

    def _head_too_large(self, data: bytes) -> bool:
        """Refuse (431, then close) a request head over the limit. h11 applies its own limit only
        to a head still incomplete: one that arrives whole in a single read passes it."""
        pending = self.conn.trailing_data[0] + data
        end = pending.find(b"\r\n\r\n")
        if (end == -1 and len(pending) <= self.limits.max_header_bytes) or 0 <= end < self.limits.max_header_bytes:
            return False
        if not self.transport.is_closing():
            log.warning("request head too large: refused", extra={"limit_bytes": self.limits.max_header_bytes})
            self.transport.write(TOO_LARGE)
            self.transport.close()
        return True

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot read: 400 in the one error shape, then close."""
        if not self.transport.is_closing():
            self.transport.write(MALFORMED)
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect(None)
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Set the clock for what the client is sending now."""
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._expect("body")
        elif state is h11.IDLE:
            if self.conn.trailing_data[0]:  # part of a head
                self._expect("head")
            elif self._waiting_for == "body":
                self._expect(None)  # between requests: uvicorn's keep-alive timeout applies
        else:  # the request is whole (or the connection is closing)
            self._expect(None)

    def _expect(self, what: str | None) -> None:
        if what == self._waiting_for:
            return  # a clock already running is never reset: more bytes do not buy more time
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = what
        if what is not None:
            timeout = self.limits.header_timeout if what == "head" else self.limits.body_timeout
            self._deadline = self.loop.call_later(timeout, self._too_slow, what)

    def _too_slow(self, what: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning("client too slow: connection closed",
                        extra={"waiting_for": what, "limit_s": self.limits.header_timeout if what == "head"
                               else self.limits.body_timeout})
            self.transport.close()


def guarded_protocol(limits: ServerLimits) -> type[GuardedH11]:
    """The h11 protocol class with these limits."""
    return type("GuardedH11", (GuardedH11,), {"limits": limits})


def uvicorn_config(app: Any, host: str, port: int, limits: ServerLimits | None = None) -> uvicorn.Config:
    """The server configuration: our protocol and limits, no access log (paths hold patient keys),
    no uvicorn log config (ours is JSON already), no proxy headers (nothing reads the client's
    address or scheme; links come from the configured public URL)."""
    limits = limits or ServerLimits()
    return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
                          http=guarded_protocol(limits), timeout_keep_alive=max(1, round(limits.keep_alive_timeout)),
                          limit_concurrency=limits.max_connections,
                          h11_max_incomplete_event_size=limits.max_header_bytes,
                          proxy_headers=False, server_header=False)
