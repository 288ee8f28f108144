"""The key ring: named AES-256 keys, one of them current.

New payloads are encrypted with the current key; a payload names the key it was encrypted with,
so every key still named by a stored payload must stay in the ring. Rotating is a configuration
change: add a key, make it current, restart the processes; old payloads still decrypt.

On disk, or in one environment variable, a key ring is JSON::

    {"current": "2025-06", "keys": {"2025-01": "<base64 of 32 bytes>", "2025-06": "<base64 of 32 bytes>"}}

Errors name the key id and where the ring came from, never key material. A small command line
creates and rotates a ring file (mode 0600)::

    python -m security.keyring create PATH      # a new ring with one random key
    python -m security.keyring rotate PATH      # add a random key and make it current
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from pydantic import SecretStr

KEY_BYTES = 32  # AES-256
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class KeyRingError(ValueError):
    """The key ring cannot be used (missing, malformed, a key of the wrong size, ...)."""


def new_key_id(prefix: str = "key") -> str:
    """A fresh key id: the date and a few random characters (``key-20250601-3f9a``)."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class KeyRing:
    """Keys by id (32 bytes each) and the id of the one that encrypts new payloads."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyRingError("the key ring holds no key")
        for key_id, key in self.keys.items():
            if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
                raise KeyRingError(f"key id {key_id!r}: expected 1-64 letters, digits, '.', '_' or '-'")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                size = len(key) if isinstance(key, bytes) else type(key).__name__
                raise KeyRingError(f"key {key_id!r}: expected {KEY_BYTES} bytes (AES-256), got {size}")
        if self.current not in self.keys:
            raise KeyRingError(f"current key {self.current!r} is not in the key ring (ids: {', '.join(self.ids)})")
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    @property
    def ids(self) -> list[str]:
        """The key ids, sorted."""
        return sorted(self.keys)

    @classmethod
    def generate(cls, key_id: str | None = None) -> KeyRing:
        """A ring of one random key (development, tests, ``vcf simulate``)."""
        key_id = key_id or new_key_id()
        return cls(current=key_id, keys={key_id: secrets.token_bytes(KEY_BYTES)})

    def rotated(self, key_id: str | None = None, key: bytes | None = None) -> KeyRing:
        """This ring plus a new key (random unless given), which becomes current."""
        key_id = key_id or new_key_id()
        if key_id in self.keys:
            raise KeyRingError(f"key {key_id!r} is already in the key ring")
        return KeyRing(current=key_id, keys={**self.keys, key_id: key or secrets.token_bytes(KEY_BYTES)})

    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """A ring from its JSON text; ``source`` (a file, a variable) is named in errors."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyRingError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(data, dict) or set(data) != {"current", "keys"}:
            raise KeyRingError(f'{source}: expected {{"current": "<key id>", "keys": {{"<key id>": "<base64>"}}}}')
        current, encoded = data["current"], data["keys"]
        if not isinstance(current, str) or not isinstance(encoded, dict):
            raise KeyRingError(f'{source}: "current" must be a key id and "keys" an object of key id to base64 key')
        keys: dict[str, bytes] = {}
        for key_id, value in encoded.items():
            if not isinstance(value, str):
                raise KeyRingError(f"{source}: key {key_id!r}: expected base64 text")
            try:
                keys[key_id] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise KeyRingError(f"{source}: key {key_id!r}: not valid base64") from None
        try:
            return cls(current=current, keys=keys)
        except KeyRingError as exc:
            raise KeyRingError(f"{source}: {exc}") from None

    @classmethod
    def read(cls, path: Path) -> KeyRing:
        """A ring from its file."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyRingError(f"key ring file {path} does not exist") from None
        except OSError as exc:
            raise KeyRingError(f"key ring file {path}: cannot be read ({exc.strerror})") from None
        return cls.parse(text, f"key ring file {path}")

    def to_json(self) -> str:
        """The ring as JSON text (it holds the keys: write it only where a secret may go)."""
        keys = {key_id: base64.b64encode(self.keys[key_id]).decode() for key_id in self.ids}
        return json.dumps({"current": self.current, "keys": keys}, indent=1) + "\n"

    def write(self, path: Path) -> None:
        """Write the ring to ``path`` (mode 0600), replacing it atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


def load_key_ring(inline: str | None, path: Path, *, inline_name: str = "VCF_KEY_RING") -> KeyRing:
    """The configured ring: the JSON text ``inline`` if given (named ``inline_name`` in errors),
    else the file at ``path``. :class:`KeyRingError` if there is none or it is unusable."""
    if inline is not None:
        return KeyRing.parse(inline, inline_name)
    if not path.exists():
        raise KeyRingError(f"no key ring: {inline_name} is unset and the key ring file {path} does not exist "
                           f"(create one with: python -m security.keyring create {path})")
    return KeyRing.read(path)


class KeyRingSettings(Protocol):
    """Where a process's configuration says the key ring is (``worker.settings.Settings``)."""

    @property
    def key_ring(self) -> SecretStr | None: ...  # VCF_KEY_RING: the ring's JSON itself

    @property
    def key_ring_path(self) -> Path: ...  # VCF_KEY_RING_FILE, or the data directory's key-ring.json


def configured_key_ring(settings: KeyRingSettings) -> KeyRing:
    """The ring from ``VCF_KEY_RING``, else from its file; :class:`KeyRingError` naming what is
    wrong if there is none or it is unusable, so that a process refuses to start rather than
    fail later."""
    inline = settings.key_ring.get_secret_value() if settings.key_ring is not None else None
    return load_key_ring(inline, settings.key_ring_path)


def ensure_key_ring_file(path: Path) -> tuple[KeyRing, bool]:
    """The ring in the file at ``path``, creating one with a random key if there is none
    (the file 0600, a missing folder 0700); and whether it was created."""
    if path.exists():
        return KeyRing.read(path), False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    ring = KeyRing.generate(new_key_id("dev"))
    ring.write(path)
    return ring, True


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m security.keyring", description="Create or rotate a key ring file.")
    parser.add_argument("action", choices=["create", "rotate"])
    parser.add_argument("path", type=Path)
    parser.add_argument("--key-id", help="the new key's id (default: key-<date>-<random>)")
    args = parser.parse_args(argv)
    try:
        if args.action == "create":
            if args.path.exists():
                raise KeyRingError(f"{args.path} exists already (rotate it instead)")
            ring = KeyRing.generate(args.key_id)
        else:
            ring = KeyRing.read(args.path).rotated(args.key_id)
        ring.write(args.path)
    except KeyRingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.path}: keys {', '.join(ring.ids)}; current {ring.current}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
