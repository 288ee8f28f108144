"""A real rest-hook receiver on loopback for the subscription tests: it records what arrives,
can be down (its port closed) or failing (answering 503) for a while, and de-duplicates by the
event number, as a subscriber should."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from activities.subscriptions import EVENT_HEADER, SIGNATURE_HEADER


@dataclass(frozen=True)
class Delivery:
    """One notification as it arrived."""

    event_number: int
    signature: str
    body: bytes
    headers: dict[str, str]

    @property
    def bundle(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def order_id(self) -> str:
        return self.bundle["entry"][0]["resource"]["id"]

    @property
    def task_status(self) -> str:
        return self.bundle["entry"][1]["resource"]["status"]


class Receiver:
    """Listens on 127.0.0.1; ``fail_next`` requests answer 503; ``down()`` closes the port."""

    def __init__(self) -> None:
        self.received: list[Delivery] = []  # every 2xx-answered request, duplicates included
        self.attempts = 0
        self.fail_next = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.attempts += 1
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= 1 if failing else 0
                    if not failing:
                        receiver.received.append(Delivery(int(self.headers[EVENT_HEADER]),
                                                          self.headers[SIGNATURE_HEADER], body, dict(self.headers)))
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def by_event_number(self) -> dict[int, Delivery]:
        """What a de-duplicating subscriber keeps: one delivery per event number."""
        with self._lock:
            return {d.event_number: d for d in self.received}
