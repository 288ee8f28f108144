"""``vcf token``: local API keys with scopes, kept in the data dir (no API call).

``create`` prints the new key once and stores only its SHA-256, name and scopes
(``$VCF_DATA_DIR/api-keys.json``, mode 0600); ``list`` shows names, scopes and state;
``revoke`` marks a key revoked (a running API refuses it from its next request).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from api.keys import SCOPES, ApiKeyError, create_key, read_keys, revoke_key
from worker.settings import Settings

EXIT_OK, EXIT_INVALID, EXIT_NOT_FOUND = 0, 2, 3


def _create(args: argparse.Namespace) -> int:
    try:
        key = create_key(Settings().api_keys_path, args.name, args.scope)
    except ApiKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(key)
    print(f"key {args.name} created with {', '.join(args.scope)}; it is shown only now", file=sys.stderr)
    return EXIT_OK


def _list(_: argparse.Namespace) -> int:
    for k in read_keys(Settings().api_keys_path):
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        print(f"{k.name}\t{' '.join(k.scopes)}\tcreated {k.created_at}\t{state}")
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    try:
        revoke_key(Settings().api_keys_path, args.name)
    except ApiKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"key {args.name} revoked", file=sys.stderr)
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``vcf token`` and its subcommands."""
    token = sub.add_parser("token", help="local API keys with scopes (in the data dir; no API call)")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key, print it once, store only its hash")
    create.add_argument("--name", required=True, help="the key's name (recorded as the caller in the audit trail)")
    create.add_argument("--scope", action="append", required=True, choices=SCOPES, help="a scope; repeat for more")
    create.set_defaults(func=_create)
    actions.add_parser("list", help="names, scopes and state of the keys").set_defaults(func=_list)
    revoke = actions.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(func=_revoke)
