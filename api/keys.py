"""Local API keys with scopes: a file in the data dir holding each key's name, scopes and
SHA-256 digest (never the key itself), readable by its owner only.

``vcf token create`` makes a key and prints it once; ``vcf token revoke`` marks it revoked (the
record stays, so the list says who had access). The API re-reads the file when it changes, so a
revoked key is refused at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activities.order_book import PATHWAY

SCOPES = ("pathways:read", "pathways:write", "decisions:write", "orders:write", "audit:read", "subscriptions:write")
"""Every scope a key can hold (the static tokens hold them all)."""
STATIC_NAME = "token"
"""The caller name of the static tokens (``VCF_API_TOKENS``, the dev token file)."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PREFIX = "vcf_"


class ApiKeyError(ValueError):
    """A key cannot be created or revoked: the message says why."""


@dataclass(frozen=True)
class ApiKey:
    """One key's record: its name, scopes, digest, and when it was created (and revoked)."""

    name: str
    scopes: tuple[str, ...]
    sha256: str
    created_at: str
    revoked_at: str | None = None


def digest(key: str) -> str:
    """The SHA-256 of a key (keys are 256 random bits, so no slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def read_keys(path: Path) -> list[ApiKey]:
    """The keys in the file (none if it does not exist)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [ApiKey(name=k["name"], scopes=tuple(k["scopes"]), sha256=k["sha256"], created_at=k["created_at"],
                   revoked_at=k.get("revoked_at")) for k in raw.get("keys", [])]


def _write(path: Path, keys: list[ApiKey]) -> None:
    """Replace the file at once (mode 0600), so a reader never sees half of it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body: dict[str, Any] = {"keys": [{"name": k.name, "scopes": list(k.scopes), "sha256": k.sha256,
                                      "created_at": k.created_at,
                                      **({"revoked_at": k.revoked_at} if k.revoked_at else {})} for k in keys]}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def create_key(path: Path, name: str, scopes: list[str]) -> str:
    """Store a new key's digest under ``name`` with ``scopes``; return the key (shown once)."""
    if not NAME.match(name):
        raise ApiKeyError("name: letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit")
    if name == STATIC_NAME:
        raise ApiKeyError(f"name: {STATIC_NAME!r} is the static tokens' name")
    if name == PATHWAY:  # the order book's own: a result it records is told from a performer's change by it
        raise ApiKeyError(f"name: {PATHWAY!r} is the order book's own name")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ApiKeyError(f"scope: expected one or more of {', '.join(SCOPES)}")
    keys = read_keys(path)
    if any(k.name == name and k.revoked_at is None for k in keys):
        raise ApiKeyError(f"name: a key named {name} exists; revoke it first")
    key = PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    ordered = tuple(s for s in SCOPES if s in scopes)
    _write(path, [*keys, ApiKey(name=name, scopes=ordered, sha256=digest(key), created_at=now)])
    return key


def revoke_key(path: Path, name: str) -> None:
    """Mark the active key ``name`` revoked; :class:`ApiKeyError` if there is none."""
    keys = read_keys(path)
    if not any(k.name == name and k.revoked_at is None for k in keys):
        raise ApiKeyError(f"name: no active key named {name}")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    _write(path, [ApiKey(k.name, k.scopes, k.sha256, k.created_at, now)
                  if k.name == name and k.revoked_at is None else k for k in keys])


class KeyFile:
    """The active keys of a file, re-read whenever the file changes."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._active: list[ApiKey] = []

    def active(self) -> list[ApiKey]:
        """The keys not revoked, as the file holds them now."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._active = [k for k in read_keys(self.path) if k.revoked_at is None] if stamp else []
            self._stamp = stamp
        return self._active
