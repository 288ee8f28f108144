"""Bearer-token authentication: the tokens come from configuration, never from a request.

Tokens are compared in constant time. A development token lives in ``$VCF_DATA_DIR/api-token``
(created on first use, readable by its owner only) so that ``make run`` prints one to use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from api.errors import ApiError
from api.jwt_auth import JwtVerifier, looks_like_jwt
from api.keys import SCOPES, STATIC_NAME, KeyFile, digest
from worker.settings import Settings


def ensure_dev_token(path: Path) -> str:
    """Return the token in the file at ``path``, creating the file (mode 0600) if missing."""
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


def load_tokens(settings: Settings) -> set[str]:
    """Tokens from ``VCF_API_TOKENS`` (comma-separated) if set, else the data dir's token file."""
    tokens = {t.strip() for t in (settings.api_tokens or "").split(",") if t.strip()}
    return tokens or {ensure_dev_token(settings.token_path)}


@dataclass(frozen=True)
class Caller:
    """Whoever presents a valid token or key: ``name`` is the key's name (``token`` for the static
    tokens, the subject of a JWT access token), ``token_id`` tells tokens apart without revealing
    one, ``scopes`` what it may do."""

    token_id: str
    name: str = STATIC_NAME
    scopes: frozenset[str] = frozenset(SCOPES)

    def require(self, scope: str, *alternatives: str) -> None:
        """:class:`ApiError` 403 naming ``scope`` (and the ``alternatives``) unless the caller holds one."""
        if not self.scopes & {scope, *alternatives}:
            raise ApiError(403, "forbidden", [f"scope: {' or '.join((scope, *alternatives))} required"])


class BearerAuth:
    """The configured tokens (every scope), local API keys (their own scopes) and, if configured,
    the identity provider's JWT access tokens (the scopes they carry: :mod:`api.jwt_auth`), and
    the check of a presented one (401 unless it is one of them, or a revoked key)."""

    def __init__(self, tokens: set[str], keys_file: Path | None = None, jwt: JwtVerifier | None = None):
        if not tokens:
            raise ValueError("tokens: at least one API token is required")
        self._tokens = [t.encode() for t in tokens]
        self._keys = KeyFile(keys_file) if keys_file else None
        self.jwt = jwt

    async def authenticate(self, token: str | None) -> Caller:
        """:meth:`caller`, and for a JWT that is none of the API's own tokens, the identity
        provider's verdict (which may fetch its keys, hence async); 401 otherwise."""
        try:
            return self.caller(token)
        except ApiError:
            if token is None or self.jwt is None or not looks_like_jwt(token):
                raise
        claims = await self.jwt.verify(token)
        return Caller(token_id=claims.token_id, name=claims.subject, scopes=claims.scopes)

    def caller(self, token: str | None) -> Caller:
        """The caller presenting ``token`` (the part after ``Bearer``; None if the header is
        missing or not a bearer token); :class:`ApiError` 401 otherwise."""
        if not token:
            raise ApiError(401, "unauthorized", ["Authorization: expected 'Bearer <token>'"],
                           {"WWW-Authenticate": "Bearer"})
        given = token.encode()
        token_id = hashlib.sha256(given).hexdigest()[:12]
        # Compare with every token so the time taken says nothing about which one nearly matched.
        if any([hmac.compare_digest(given, t) for t in self._tokens]):  # noqa: C419 (a list: compare all)
            return Caller(token_id=token_id)
        if self._keys is not None:
            presented = digest(token).encode()
            keys = self._keys.active()
            matches = [k for k, same in [(k, hmac.compare_digest(presented, k.sha256.encode())) for k in keys] if same]
            if matches:
                return Caller(token_id=token_id, name=matches[0].name, scopes=frozenset(matches[0].scopes))
        raise ApiError(401, "unauthorized", ["Authorization: unknown token"],
                       {"WWW-Authenticate": 'Bearer error="invalid_token"'})
