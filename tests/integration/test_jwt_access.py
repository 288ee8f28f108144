"""JWT access tokens from an identity provider: a real JWKS endpoint on loopback HTTP serving the
public keys of keys this test makes, tokens minted here, the API over the real dev server.

Each bad token answers 401 with ``WWW-Authenticate`` and the kind of failure only; a valid one
reads and is audited under its subject; a rotated key is picked up, at most one JWKS fetch per
refresh interval however many unknown key ids arrive; each scope boundary answers 403.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.jwt_auth import Jwks, JwtVerifier
from tests.helpers import eventually
from tests.integration.api_support import AUTH, BASE_URL, build_app, enroll

pytestmark = pytest.mark.asyncio(loop_scope="session")

ISSUER = "https://idp.hospital.test/realms/clinical"
AUDIENCE = "https://vcf-api.hospital.test"
MIN_REFRESH = 60.0


@dataclass
class IdentityProvider:
    """The JWKS endpoint of a test identity provider: its keys (kid → private key), which of them
    it publishes, and how many times its JWKS was fetched."""

    keys: dict[str, Any] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def add_key(self, kid: str, kind: str = "RSA", publish: bool = True) -> None:
        self.keys[kid] = rsa.generate_private_key(65537, 2048) if kind == "RSA" else ec.generate_private_key(
            ec.SECP256R1())
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            public = self.keys[kid].public_key()
            algorithm = "RS256" if isinstance(public, rsa.RSAPublicKey) else "ES256"
            jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(public))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": algorithm})
        return {"keys": keys}

    def mint(self, kid: str = "key-1", *, scope: str = "pathways:read", sub: str = "ris-feed", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope, "iat": now, "nbf": now - 5,
                "exp": now + 300, "jti": uuid.uuid4().hex, **claims}
        key = self.keys[kid]
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm, headers={"kid": kid})


class Clock:
    """The JWKS cache's clock, moved by the test (no waiting for the refresh interval)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.add_key("key-1")
    provider.add_key("key-ec", kind="EC")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.fetches += 1
            body = json.dumps(provider.jwks()).encode()
            self.send_response(200 if self.path == "/jwks" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/jwks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    server.server_close()


def verifier(idp: IdentityProvider, clock: Clock | None = None) -> JwtVerifier:
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, leeway=30,
                       jwks=Jwks(idp.url, min_refresh=MIN_REFRESH, clock=clock or Clock()))


def client(app, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL.rstrip("/"), headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def assert_refused(answer: httpx.Response, reason: str) -> None:
    assert answer.status_code == 401, (reason, answer.text)
    assert answer.json() == {"error": "unauthorized", "detail": [f"Authorization: {reason}"]}
    assert answer.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_bad_tokens_are_refused_and_a_valid_one_reads_under_its_subject(stack, idp):
    app = build_app(stack.env, stack.book, stack.task_queue, jwt=verifier(idp))
    async with client(app, **AUTH) as static:
        patient = await enroll(static)
    path = f"/v1/patients/{patient}"
    now = int(time.time())
    good = idp.mint(sub="ris-feed")
    head, _, signature = good.split(".")
    public_pem = idp.keys["key-1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    forged_hs256 = unsigned(claims_of(good), {"alg": "HS256", "typ": "JWT", "kid": "key-1"}).rstrip(".")
    forged_hs256 += "." + b64(hmac.new(public_pem, forged_hs256.encode(), hashlib.sha256).digest())
    idp.add_key("stranger", publish=False)
    bad = {
        "token expired": idp.mint(exp=now - 120, iat=now - 600, nbf=now - 600),
        "token not yet valid": idp.mint(nbf=now + 600, iat=now),
        "wrong audience": idp.mint(aud="https://another-api.hospital.test"),
        "wrong issuer": idp.mint(iss="https://idp.elsewhere.test"),
        "unknown signing key": idp.mint("stranger"),
        "algorithm not allowed": unsigned(claims_of(good), {"alg": "none", "typ": "JWT", "kid": "key-1"}),
        "bad signature": f"{head}.{b64(json.dumps({**claims_of(good), 'scope': 'audit:read'}).encode())}.{signature}",
        "missing claim exp": idp.mint(exp=None),
        "missing claim sub": idp.mint(sub=None),
        "malformed token": "eyJ.eyJ.c2ln",
    }
    async with client(app) as anonymous:
        for reason, token in bad.items():
            assert_refused(await anonymous.get(path, headers={"Authorization": f"Bearer {token}"}), reason)
        # An HMAC over the published public key: the header's alg is refused before any key is used.
        assert_refused(await anonymous.get(path, headers={"Authorization": f"Bearer {forged_hs256}"}),
                       "algorithm not allowed")
        # An RSA key's id under ES256: a key checks only the algorithm it is published for.
        es_header = json.loads(base64.urlsafe_b64decode(head + "==")) | {"alg": "ES256"}
        assert_refused(await anonymous.get(path, headers={"Authorization": "Bearer " + ".".join(
            [b64(json.dumps(es_header).encode()), good.split(".")[1], signature])}), "algorithm not allowed")

    async with client(app, good) as reader, client(app, idp.mint("key-ec", sub="lab-gateway")) as ec_reader:
        answer = await reader.get(path)
        assert answer.status_code == 200, answer.text
        assert answer.json()["patient_id"] == patient
        assert (await ec_reader.get(f"{path}/CarePlan")).status_code == 200
    async with client(app, **AUTH) as static:
        audit = (await static.get("/v1/audit", params={"patient": patient})).json()
    seen = [(e["resource"]["agent"][0]["who"]["display"], e["resource"]["entity"][0]["detail"][0]["valueString"],
             e["resource"]["outcomeDesc"]) for e in audit["entry"]]
    assert ("ris-feed", "GET /v1/patients/{patient_id}", "HTTP 200") in seen
    assert ("lab-gateway", "GET /v1/patients/{patient_id}/CarePlan", "HTTP 200") in seen
    # Refused tokens name no one: they are recorded as unauthenticated.
    assert ("(unauthenticated)", "GET /v1/patients/{patient_id}", "HTTP 401") in seen
    # The token's text, and the reasons of refusals, stay out of the trail.
    assert good not in json.dumps(audit) and "expired" not in json.dumps(audit)


async def test_a_rotated_key_is_picked_up_and_unknown_ids_do_not_hammer_the_idp(stack, idp):
    clock = Clock()
    app = build_app(stack.env, stack.book, stack.task_queue, jwt=verifier(idp, clock))
    async with client(app, **AUTH) as static:
        patient = await enroll(static)
    path = f"/v1/patients/{patient}"
    async with client(app) as http:
        def get(token: str):
            return http.get(path, headers={"Authorization": f"Bearer {token}"})

        before = idp.fetches
        assert (await get(idp.mint("key-1"))).status_code == 200
        assert (await get(idp.mint("key-1"))).status_code == 200
        assert idp.fetches == before + 1  # fetched once, then kept

        # The IdP rotates: a new key signs, the old one is withdrawn.
        idp.add_key("key-2")
        idp.published.remove("key-1")
        rotated = idp.mint("key-2", sub="rotated-client")
        clock.now += 1  # within the refresh interval of the first fetch: not fetched again
        assert_refused(await get(rotated), "unknown signing key")
        assert idp.fetches == before + 1
        clock.now += MIN_REFRESH
        assert (await get(rotated)).status_code == 200  # one fetch on the unknown id, and it is known
        assert idp.fetches == before + 2

        # A stream of made-up key ids costs the IdP nothing more within the interval.
        for n in range(20):
            forged = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
                                idp.keys["key-2"], "RS256", headers={"kid": f"made-up-{n}"})
            assert_refused(await get(forged), "unknown signing key")
        assert idp.fetches == before + 2
        assert (await get(idp.mint("key-2"))).status_code == 200

        # Many requests at once under the next new key: one fetch serves them all.
        idp.add_key("key-3")
        clock.now += MIN_REFRESH
        answers = await asyncio.gather(*[get(idp.mint("key-3", sub=f"client-{n}")) for n in range(10)])
        assert [a.status_code for a in answers] == [200] * 10
        assert idp.fetches == before + 3
        idp.published.insert(0, "key-1")  # the other tests' key, published again


async def test_each_scope_boundary_answers_403_naming_the_scope(stack, idp):
    app = build_app(stack.env, stack.book, stack.task_queue, jwt=verifier(idp))
    tokens = {scope: idp.mint(scope=scope, sub=f"client-{scope.replace(':', '-')}") for scope in (
        "pathways:read", "pathways:write", "decisions:write", "orders:write", "audit:read")}
    # SMART's own forms and unknown scopes are not this API's: they grant nothing here.
    tokens["system/*.read"] = idp.mint(scope="system/*.read system/Patient.read", sub="smart-client")

    def forbidden(answer: httpx.Response, scope: str) -> None:
        assert answer.status_code == 403, answer.text
        assert answer.json() == {"error": "forbidden", "detail": [f"scope: {scope} required"]}

    async with client(app, **AUTH) as static:
        patient = await enroll(static)
    path = f"/v1/patients/{patient}"
    pain = {"type": "pain", "nrs": 5}
    decision = {"type": "clinician", "decision": "pause", "reason": "family meeting", "author": "dr-1"}
    c = {scope: client(app, token) for scope, token in tokens.items()}
    try:
        read, write, decide, order, audit, smart = c.values()
        assert (await read.get(path)).status_code == 200
        forbidden(await read.post(f"{path}/events", json=pain | {"event_id": "r-1"}),
                  "pathways:write or decisions:write")
        forbidden(await read.get("/v1/audit", params={"patient": patient}), "audit:read")
        answer = await write.post(f"{path}/events", json=pain | {"event_id": "w-1"})
        assert answer.status_code == 202, answer.text
        forbidden(await write.get(path), "pathways:read")
        forbidden(await write.post(f"{path}/events", json=decision | {"event_id": "w-2"}), "decisions:write")
        answer = await decide.post(f"{path}/events", json=decision | {"event_id": "d-1"})
        assert answer.status_code == 202, answer.text
        forbidden(await decide.post(f"{path}/events", json=pain | {"event_id": "d-2"}), "pathways:write")
        forbidden(await order.get(path), "pathways:read")
        forbidden(await audit.get(path), "pathways:read")
        forbidden(await smart.get(path), "pathways:read")
        assert stack.app.state.services.registry.submitted_by(patient, "w-1") == "client-pathways-write"
        assert stack.app.state.services.registry.submitted_by(patient, "d-1") == "client-decisions-write"

        async def an_active_order():
            bundle = (await static_http.get("/v1/orders", params={"patient": patient, "status": "active"})).json()
            return bundle.get("entry")

        async with client(app, **AUTH) as static_http:
            order_id = (await eventually(an_active_order))[0]["resource"]["id"]
        forbidden(await read.post(f"/v1/orders/{order_id}/acknowledge", json={}), "orders:write")
        answer = await order.post(f"/v1/orders/{order_id}/acknowledge", json={})
        assert answer.status_code == 200, answer.text
        trail = await audit.get("/v1/audit", params={"patient": patient})
        assert trail.status_code == 200, trail.text
        who = {e["resource"]["agent"][0]["who"]["display"] for e in trail.json()["entry"]}
        assert {"client-pathways-read", "client-pathways-write", "client-decisions-write",
                "client-orders-write", "smart-client"} <= who
    finally:
        for http in c.values():
            await http.aclose()


async def test_without_jwt_settings_a_valid_token_is_just_an_unknown_one(stack, idp):
    app = build_app(stack.env, stack.book, stack.task_queue)
    async with client(app, idp.mint()) as http:
        answer = await http.get("/v1/orders")
    assert answer.status_code == 401 and answer.json()["detail"] == ["Authorization: unknown token"]


async def test_the_codec_takes_a_jwt_with_pathways_read_only(stack, idp):
    app = build_app(stack.env, stack.book, stack.task_queue, jwt=verifier(idp))
    body = {"payloads": []}
    async with client(app, idp.mint(scope="pathways:read", sub="ui-operator")) as reader, \
            client(app, idp.mint(scope="audit:read orders:write", sub="auditor")) as other:
        assert (await reader.post("/codec/decode", json=body, headers={"X-Namespace": "default"})).status_code == 200
        for route in ("/codec/decode", "/codec/encode"):
            answer = await other.post(route, json=body)
            assert answer.status_code == 403, answer.text
            assert answer.json()["detail"] == ["scope: pathways:read required"]
        assert_refused(await reader.post("/codec/decode", json=body, headers={
            "Authorization": f"Bearer {idp.mint(scope='pathways:read', aud='another-api')}"}), "wrong audience")
