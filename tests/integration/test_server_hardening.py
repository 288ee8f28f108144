"""The HTTP server itself, over raw sockets on loopback: slow clients are cut off, connections
are capped, a client gone mid-body is not an error, dot segments reach no patient, and the CLI
keeps its token to the API's own origin. A real uvicorn (``api.main.serve``) with small limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
import uuid

import httpx
import pytest
import pytest_asyncio

from activities.order_book import OrderBook
from api.main import serve
from api.server import ServerLimits
from cli.api_client import ApiClient, ApiFailure
from tests.helpers import eventually, free_port
from tests.integration.api_support import AUTH, TOKEN, build_app
from workflows.models import workflow_id_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMITS = ServerLimits(header_timeout=1.0, body_timeout=1.5, keep_alive_timeout=1, max_connections=6)
SLACK = 0.75  # scheduling on a busy 2-core machine


@contextlib.asynccontextmanager
async def running(app, limits: ServerLimits = LIMITS):
    """``app`` on a loopback port under a real uvicorn; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = asyncio.create_task(serve(app, "127.0.0.1", port, limits))

    async def up():
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(up, timeout=10)
    try:
        yield url
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(dev_env, tmp_path_factory):
    """The API (no worker needed here) under a real uvicorn with small limits."""
    book = OrderBook(tmp_path_factory.mktemp("server") / "orders.db")
    async with running(build_app(dev_env, book, f"server-{uuid.uuid4()}")) as url:
        yield url


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (reading whatever it sends meanwhile)."""
    started = time.monotonic()
    with contextlib.suppress(ConnectionError):
        while await asyncio.wait_for(reader.read(65536), limit):
            pass
    return time.monotonic() - started


async def _trickle(writer: asyncio.StreamWriter, chunk: bytes, every: float) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while True:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(every)


async def test_a_client_trickling_its_body_is_disconnected_in_the_configured_time(api, caplog):
    caplog.set_level(logging.INFO, logger="api")
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(api))
    writer.write(b"POST /v1/patients HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer " + TOKEN.encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    trickle = asyncio.create_task(_trickle(writer, b" ", 0.1))  # ten bytes a second: never whole
    try:
        took = await _closed_after(reader, LIMITS.body_timeout + 5)
    finally:
        trickle.cancel()
        writer.close()
    assert LIMITS.body_timeout - 0.1 <= took <= LIMITS.body_timeout + SLACK, took
    await eventually(lambda: _logged(caplog, "client disconnected"), timeout=5)
    assert not _logged_now(caplog, "unhandled error")
    assert any(r.getMessage() == "client too slow: connection closed" and r.waiting_for == "body"
               for r in caplog.records)


async def test_a_client_trickling_its_headers_or_sending_nothing_is_disconnected(api):
    for first, chunk in ((b"GET /healthz HTTP/1.1\r\nHost: api\r\n", b"X-Slow: 1\r\n"), (b"", b"")):
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(api))
        writer.write(first)
        trickle = asyncio.create_task(_trickle(writer, chunk, 0.1)) if chunk else None
        try:
            took = await _closed_after(reader, LIMITS.header_timeout + 5)
        finally:
            if trickle:
                trickle.cancel()
            writer.close()
        assert LIMITS.header_timeout - 0.1 <= took <= LIMITS.header_timeout + SLACK, (first, took)


async def test_a_request_sent_in_pieces_within_the_limits_is_served(api):
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(api))
    body = b'{"reason": "x"}'
    for piece in (b"POST /v1/orders/ord-nope/acknowledge HTTP/1.1\r\nHost: api\r\n",
                  b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Type: application/json\r\n",
                  b"Content-Length: %d\r\n\r\n" % len(body), body[:5], body[5:]):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.3)  # 1.5 s in all: more than one limit, within each
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.startswith(b"HTTP/1.1 404"), status


async def test_connections_are_capped(api):
    idle = [await asyncio.open_connection("127.0.0.1", _port(api)) for _ in range(LIMITS.max_connections)]
    try:
        async with httpx.AsyncClient(base_url=api, headers=AUTH) as http:
            assert (await http.get("/healthz")).status_code == 503
    finally:
        for _, writer in idle:
            writer.close()

    async def served():
        async with httpx.AsyncClient(base_url=api) as http:
            return (await http.get("/healthz")).status_code == 200
    await eventually(served, timeout=5)


async def test_a_client_gone_mid_body_is_logged_as_such_not_as_a_500(api, caplog):
    caplog.set_level(logging.INFO, logger="api")
    _reader, writer = await asyncio.open_connection("127.0.0.1", _port(api))
    writer.write(b"POST /v1/patients HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer " + TOKEN.encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\": ")
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await eventually(lambda: _logged(caplog, "client disconnected"), timeout=5)
    [line] = [r for r in caplog.records if r.getMessage() == "request" and r.route == "/v1/patients"]
    assert line.status == 499
    assert not _logged_now(caplog, "unhandled error")


@pytest.mark.parametrize("segment", [".", "..", "%2e", "%2E%2E", ".%2e"])
async def test_dot_segments_reach_no_patient(api, segment):
    for suffix in ("", "/timeline", "/CarePlan"):
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(api))
        writer.write(f"GET /v1/patients/{segment}{suffix} HTTP/1.1\r\nHost: api\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 404") and b'"unknown patient"' in answer, answer[:300]


async def test_the_cli_sends_its_token_to_the_apis_origin_only(dev_env, tmp_path):
    """An API whose links point elsewhere (misconfigured, or not ours): the CLI stops there."""
    book = OrderBook(tmp_path / "orders.db")
    patient = "pt-links"
    for i in range(3):
        book.place(idempotency_key=f"{workflow_id_for(patient)}/a{i}", patient_id=patient,
                   workflow_id=workflow_id_for(patient), action_id=f"a{i}", kind="order_dxa",
                   resource="ServiceRequest", priority="routine", day=i, title="DXA", rationale="r",
                   citation="Guideline: test", details={}, codes=[])
    elsewhere = socket.socket()
    elsewhere.bind(("127.0.0.1", 0))
    elsewhere.listen()
    elsewhere.setblocking(False)
    other = f"http://localhost:{elsewhere.getsockname()[1]}/"
    app = build_app(dev_env, book, "unused", public_url=other)
    try:
        async with running(app) as url:
            client = ApiClient(url, TOKEN)
            one_page = await asyncio.to_thread(client.orders, patient, None, 3)  # one page: no link to follow
            assert len(one_page["entry"]) == 3
            with pytest.raises(ApiFailure) as refused:
                await asyncio.to_thread(client.orders, patient, None, 2)
        assert "another origin" in refused.value.error and refused.value.status is None
        with pytest.raises(BlockingIOError):
            elsewhere.accept()  # nobody came: the token never left for the other origin
    finally:
        elsewhere.close()


async def _logged(caplog, message: str) -> bool:
    return _logged_now(caplog, message)


def _logged_now(caplog, message: str) -> bool:
    return any(r.getMessage() == message for r in caplog.records)


async def test_readyz_turns_503_while_the_api_is_saturated(dev_env, tmp_path):
    app = build_app(dev_env, OrderBook(tmp_path / "orders.db"), "unused", max_in_flight=2)
    async with running(app, ServerLimits(body_timeout=10)) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/readyz")).json()["ready"] is True
        held = []
        for _ in range(3):  # three requests waiting for the rest of their bodies: in flight
            _reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
            writer.write(b"POST /v1/patients HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer " + TOKEN.encode()
                         + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            await writer.drain()
            held.append(writer)

        async def saturated():
            r = await http.get("/readyz")
            return r if r.status_code == 503 else None
        r = await eventually(saturated, timeout=5)
        assert r.json() == {"error": "not ready", "detail": ["load: 3 requests in flight (limit 2)"]}
        for writer in held:
            writer.close()

        async def ready_again():
            return (await http.get("/readyz")).status_code == 200
        await eventually(ready_again, timeout=5)


async def test_a_request_head_larger_than_the_limit_is_refused(api):
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(api))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Big: " + b"a" * (LIMITS.max_header_bytes + 1) + b"\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {
        "error": "request head too large", "detail": ["headers: the request line and headers are too large"]}
    async with httpx.AsyncClient(base_url=api) as http:  # a head within the limit, as ever
        assert (await http.get("/healthz", headers={"X-Big": "a" * 8000})).status_code == 200


async def test_a_request_that_is_not_http_gets_the_one_error_shape(api):
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(api))
    writer.write(b"GARBAGE\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head, answer[:200]
    assert json.loads(body) == {"error": "bad request", "detail": ["request: not a valid HTTP/1.1 request"]}
