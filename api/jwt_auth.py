"""JWT access tokens from the hospital's identity provider (SMART Backend Services: OAuth2 client
credentials), besides the API's own tokens and keys.

A token is accepted when it is signed with RS256 or ES256 by a key of the issuer's JWKS (fetched
from ``VCF_JWT_JWKS_URL``, kept, fetched again on a key id it lacks but at most once per
``min_refresh`` seconds, so that made-up key ids cannot make the API hammer the identity
provider), names the configured issuer and audience, and is within ``exp`` and ``nbf`` (a small
leeway for clocks). The header's ``alg`` must be the one the key is for: never ``none``, never an
HMAC "signed" with the public key. The caller is the token's ``sub`` (else ``client_id``), recorded
as key names are; its scopes are those of the ``scope`` claim that this API knows
(:data:`api.keys.SCOPES`), other scopes being ignored. Every failure is a 401 whose detail says
only the kind of failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from activities.order_book import PATHWAY
from api.errors import ApiError
from api.keys import SCOPES
from worker.settings import Settings

log = logging.getLogger("api")

ALGORITHMS = ("RS256", "ES256")
"""The only signatures accepted: asymmetric, so a leaked JWKS cannot mint tokens."""
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 256 * 1024
JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# A subject is recorded in the audit trail and beside events: a printable name, not a document.
SUBJECT = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,254}$")


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts separated by dots (the API's own tokens and keys have no dots)."""
    return bool(JWT_SHAPE.match(token))


def refused(reason: str) -> ApiError:
    """The 401 for a token that is not accepted, naming only the kind of failure (RFC 6750)."""
    return ApiError(401, "unauthorized", [f"Authorization: {reason}"],
                    {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'})


@dataclass(frozen=True)
class SigningKey:
    """One verification key of the issuer: the algorithm it is for and the public key."""

    kid: str
    algorithm: str
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def signing_keys(jwks: Any) -> dict[str, SigningKey]:
    """The usable signature keys of a JWK Set, by key id: RSA (2048 bits or more) for RS256 and
    P-256 EC for ES256, each with a ``kid``. Other keys (encryption keys, other algorithms,
    private parts) are left out; ValueError if the document is not a JWK Set at all."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError('expected a JWK Set: {"keys": [...]}')
    found: dict[str, SigningKey] = {}
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
            continue
        kty = jwk.get("kty")
        algorithm = {"RSA": "RS256", "EC": "ES256"}.get(kty) if isinstance(kty, str) else None
        if algorithm is None or jwk.get("alg", algorithm) != algorithm or "d" in jwk:
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm).key
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if (isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS) \
                or (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
            found[jwk["kid"]] = SigningKey(jwk["kid"], algorithm, key)
    return found


class Jwks:
    """The issuer's signing keys, fetched from ``url`` on first use and again when a token names a
    key id not among them, at most once per ``min_refresh`` seconds (failed fetches count), and
    when they are older than ``max_age``. A failed fetch keeps the keys already known."""

    def __init__(self, url: str, *, min_refresh: float = 60.0, max_age: float = 3600.0, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.url, self.min_refresh, self.max_age, self.timeout = url, min_refresh, max_age, timeout
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None  # the last successful fetch
        self._tried_at: float | None = None  # the last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the JWKS was requested (for operators and tests)."""

    async def key(self, kid: str) -> SigningKey | None:
        """The key with id ``kid``, fetching the set again if allowed; None if there is none."""
        if kid in self._keys and not self._stale():
            return self._keys[kid]
        async with self._lock:  # one fetch at a time; those waiting see its result
            if (kid not in self._keys or self._stale()) and self._may_fetch():
                await self._fetch()
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.max_age

    def _may_fetch(self) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= self.min_refresh

    async def _fetch(self) -> None:
        self._tried_at = self._clock()
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http, \
                    http.stream("GET", self.url, headers={"Accept": "application/json"}) as answer:
                answer.raise_for_status()
                body = b""
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
            keys = signing_keys(json.loads(body))
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks fetch failed", extra={"reason": type(exc).__name__})
            return
        self._keys, self._fetched_at = keys, self._clock()


@dataclass(frozen=True)
class TokenClaims:
    """What an accepted token says about its bearer."""

    subject: str
    scopes: frozenset[str]
    token_id: str


class JwtVerifier:
    """Checks access tokens of one issuer for one audience (see the module docstring)."""

    def __init__(self, *, issuer: str, audience: str, jwks: Jwks, leeway: float = 30.0):
        self.issuer, self.audience, self.jwks, self.leeway = issuer, audience, jwks, leeway

    async def verify(self, token: str) -> TokenClaims:
        """The claims of an accepted token; :class:`ApiError` 401 naming the kind of failure otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise refused("malformed token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise refused("algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise refused("unknown signing key")
        key = await self.jwks.key(kid)
        if key is None:
            raise refused("unknown signing key")
        if key.algorithm != algorithm:  # an RSA key never checks an ES256 signature, nor the reverse
            raise refused("algorithm not allowed")
        try:
            claims = jwt.decode(token, key.key, algorithms=[key.algorithm], audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise refused("token expired") from None
        except jwt.ImmatureSignatureError:
            raise refused("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise refused("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise refused("wrong issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise refused(f"missing claim {exc.claim}") from None
        except jwt.InvalidSignatureError:
            raise refused("bad signature") from None
        except jwt.InvalidTokenError:
            raise refused("malformed token") from None
        return TokenClaims(subject=_subject(claims), scopes=_scopes(claims),
                           token_id=hashlib.sha256(token.encode()).hexdigest()[:12])


def _subject(claims: dict[str, Any]) -> str:
    """Who the token stands for: ``sub``, else ``client_id`` (a client credentials grant)."""
    for name in ("sub", "client_id"):
        value = claims.get(name)
        if isinstance(value, str) and SUBJECT.match(value):
            if value == PATHWAY:  # the order book's own name, which tells a result from a performer's change
                raise refused(f"{name}: {PATHWAY!r} is the order book's own name")
            return value
    raise refused("missing claim sub")


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """The scopes of the ``scope`` claim (space-separated, RFC 8693) that this API knows."""
    scope = claims.get("scope")
    return frozenset(scope.split()) & frozenset(SCOPES) if isinstance(scope, str) else frozenset()


def jwt_verifier(settings: Settings) -> JwtVerifier | None:
    """The verifier the settings describe (``VCF_JWT_*``), or None when JWTs are not configured."""
    if settings.jwt_issuer is None or settings.jwt_audience is None or settings.jwt_jwks_url is None:
        return None
    return JwtVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience, leeway=settings.jwt_leeway,
                       jwks=Jwks(settings.jwt_jwks_url, min_refresh=settings.jwt_jwks_min_refresh))
