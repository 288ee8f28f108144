"""Encrypted payloads on the real dev server, and the API's codec server for the Web UI.

What the server stores, as the ``temporal`` CLI (no codec) shows it, holds no enrollment field
and no clinician text; the codec routes (the API app over HTTP) decode the same payloads back.
CORS answers the UI's origin only; the routes need a token outside development.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from typing import Any

import httpx
import pytest
import pytest_asyncio

from activities.order_book import OrderBook
from api.app import create_app
from tests.helpers import TEST_KEY_RING, enrollment, eventually, make_worker
from tests.integration.api_support import AUTH, TOKEN
from tests.integration.cleartext import clear_text
from worker.runtime import binary
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")

UI = "http://127.0.0.1:8233"
UI_ORIGINS = (UI, "http://localhost:8233")
PAUSE_REASON = "admitted to ward 7 after a fall at home"
ENCRYPTED = base64.b64encode(b"binary/encrypted").decode()
PLAIN_JSON = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
              "data": base64.b64encode(b'{"nrs":6}').decode()}


def codec_app(env, book: OrderBook, *, development: bool = False):
    return create_app(client=env.client, order_book=book, tokens={TOKEN}, codec_origins=UI_ORIGINS,
                      codec_open_on_loopback=development)


def http(app, *, client: tuple[str, int] = ("127.0.0.1", 50000), headers: dict[str, str] | None = None):
    """HTTP through the ASGI app, from ``client`` (loopback unless told otherwise)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://api.test",
                             headers=headers)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(dev_env, tmp_path_factory):
    return codec_app(dev_env, OrderBook(tmp_path_factory.mktemp("codec") / "orders.db"))


def payloads_in_json(value: Any) -> list[dict[str, Any]]:
    """The encrypted payloads in the CLI's JSON history (protobuf JSON, as the UI receives it)."""
    if isinstance(value, list):
        return [p for v in value for p in payloads_in_json(v)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("metadata"), dict) and value["metadata"].get("encoding") == ENCRYPTED:
        return [value]
    return [p for v in value.values() for p in payloads_in_json(v)]


async def test_the_stored_history_is_ciphertext_and_the_codec_server_decodes_it(dev_env, order_book, task_queue, app):
    async with make_worker(dev_env, order_book, task_queue):
        handle = await start_pathway(dev_env.client, enrollment("pt-codec-01", fracture_level="T11", pain_nrs=9),
                                     task_queue=task_queue)
        await handle.signal(PatientPathwayWorkflow.clinician, {"type": "clinician", "decision": "pause",
                                                               "reason": PAUSE_REASON, "author": "dr-codec"})

        async def paused():
            return (await handle.query(PatientPathwayWorkflow.state)).paused

        await eventually(paused)
        shown = await asyncio.to_thread(subprocess.run, [
            binary("temporal"), "workflow", "show", "--workflow-id", handle.id, "--output", "json",
            "--address", dev_env.client.service_client.config.target_host], capture_output=True, text=True,
            timeout=60)
        await handle.terminate("test done")
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)

    # The fracture level is in the FractureLevel search attribute by design (never encoded, never
    # PHI); everywhere else, as the server stores it and base64 undone, no field and no text is clear.
    seen = clear_text(history)
    # Quoted as JSON writes them: a bare "T11" turns up by chance in base64 text or random bytes.
    clear = ['"fracture_level"', '"pain_nrs":9', '"T11"', PAUSE_REASON]
    assert [c for c in clear if c in seen] == []
    encrypted = payloads_in_json(history)
    assert len(encrypted) >= 5  # input, signal, activity inputs and results, summaries, ...

    async with http(app, headers={**AUTH, "X-Namespace": "default"}) as client:
        answer = await client.post("/codec/decode", json={"payloads": encrypted})
    assert answer.status_code == 200, answer.text
    payloads = answer.json()["payloads"]
    assert len(payloads) == len(encrypted)
    assert not any(p["metadata"]["encoding"] == ENCRYPTED for p in payloads)
    text = "\n".join(base64.b64decode(p["data"]).decode() for p in payloads)
    assert [c for c in clear if c not in text] == []


async def test_encode_then_decode_round_trips_and_plain_payloads_pass(app):
    async with http(app, headers=AUTH) as client:
        encoded = (await client.post("/codec/encode", json={"payloads": [PLAIN_JSON]})).json()["payloads"]
        assert encoded[0]["metadata"]["encoding"] == ENCRYPTED
        assert base64.b64decode(encoded[0]["metadata"]["encryption-key-id"]).decode() == TEST_KEY_RING.current
        assert (await client.post("/codec/decode", json={"payloads": encoded})).json() == {"payloads": [PLAIN_JSON]}
        plain = await client.post("/codec/decode", json={"payloads": [PLAIN_JSON]})
        assert plain.json() == {"payloads": [PLAIN_JSON]}
        assert (await client.post("/codec/decode", json={})).json() == {"payloads": []}


async def test_a_payload_under_an_unknown_key_is_refused_naming_it(app):
    async with http(app, headers=AUTH) as client:
        foreign = dict(PLAIN_JSON, metadata={"encoding": ENCRYPTED,
                                             "encryption-key-id": base64.b64encode(b"retired-2024").decode()})
        answer = await client.post("/codec/decode", json={"payloads": [PLAIN_JSON, foreign]})
    assert answer.status_code == 422
    [detail] = answer.json()["detail"]
    assert detail.startswith("payloads[1]:") and "'retired-2024'" in detail


async def test_bad_bodies_and_other_namespaces_are_refused(app):
    async with http(app, headers=AUTH) as client:
        for body in ({"payloads": [{"data": "not base64!"}]}, {"payloads": [{"extra": ""}]}, [1], "x"):
            answer = await client.post("/codec/decode", json=body)
            assert answer.status_code == 422 and answer.json()["detail"], body
        assert (await client.post("/codec/decode", content=b"{")).status_code == 422
        other = await client.post("/codec/decode", json={"payloads": []}, headers={"X-Namespace": "other"})
        assert other.status_code == 404 and "X-Namespace" in other.json()["detail"][0]


async def test_cors_preflight_is_answered_for_the_ui_origin_only(app):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
    async with http(app) as client:
        for origin in UI_ORIGINS:
            answer = await client.options("/codec/decode", headers={"Origin": origin, **preflight})
            assert answer.status_code == 204
            assert answer.headers["Access-Control-Allow-Origin"] == origin
            assert "POST" in answer.headers["Access-Control-Allow-Methods"]
            assert {"content-type", "x-namespace"} <= set(answer.headers["Access-Control-Allow-Headers"].split(", "))
        refused = await client.options("/codec/decode", headers={"Origin": "https://evil.example", **preflight})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        posted = await client.post("/codec/decode", json={"payloads": []}, headers={"Origin": "https://evil.example",
                                                                                     **AUTH})
        assert posted.status_code == 403 and "access-control-allow-origin" not in posted.headers
        # The UI's POST carries the header, its errors too; no other route answers CORS.
        ok = await client.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI, **AUTH})
        assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == UI
        unauthorized = await client.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI})
        assert unauthorized.status_code == 401 and unauthorized.headers["Access-Control-Allow-Origin"] == UI
        other = await client.options("/v1/patients", headers={"Origin": UI, **preflight})
        assert "access-control-allow-origin" not in other.headers


async def test_outside_development_the_codec_needs_a_token(app):
    async with http(app) as client:
        for route in ("/codec/decode", "/codec/encode"):
            answer = await client.post(route, json={"payloads": [PLAIN_JSON]})
            assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = await client.post(route, json={"payloads": []}, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert (await client.post(route, json={"payloads": []}, headers=AUTH)).status_code == 200


async def test_in_development_the_codec_is_open_on_loopback_only(dev_env, order_book):
    app = codec_app(dev_env, order_book, development=True)
    for host in ("127.0.0.1", "::1"):
        async with http(app, client=(host, 50000)) as client:
            assert (await client.post("/codec/decode", json={"payloads": [PLAIN_JSON]})).status_code == 200
    async with http(app, client=("192.0.2.10", 50000)) as client:
        assert (await client.post("/codec/decode", json={"payloads": []})).status_code == 401
        assert (await client.post("/codec/decode", json={"payloads": []}, headers=AUTH)).status_code == 200
    async with http(app) as client:  # the rest of the API still needs its token
        assert (await client.get("/v1/orders")).status_code == 401
