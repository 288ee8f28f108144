"""What a history exported without the codec shows in clear: every string in it, and every string
that is base64 decoded (the ``temporal`` CLI's JSON shows payload bytes so)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from typing import Any


def strings_in(value: Any) -> list[str]:
    """Every string value in a JSON document."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


def without_search_attributes(value: Any) -> Any:
    """The document without its search attributes (in clear by Temporal's design, never PHI)."""
    if isinstance(value, dict):
        return {k: without_search_attributes(v) for k, v in value.items()
                if k not in ("searchAttributes", "upsertWorkflowSearchAttributesEventAttributes")}
    if isinstance(value, list):
        return [without_search_attributes(v) for v in value]
    return value


def base64_decoded(strings: list[str]) -> list[str]:
    """Each string that is base64, decoded (the CLI's JSON shows bytes so)."""
    decoded = []
    for s in strings:
        with contextlib.suppress(binascii.Error, ValueError):
            decoded.append(base64.b64decode(s, validate=True).decode(errors="replace"))
    return decoded


def clear_text(history: Any) -> str:
    """Everything readable in an exported history but its search attributes (never encoded, never PHI)."""
    stored = without_search_attributes(history)
    return json.dumps(stored) + "\n" + "\n".join(base64_decoded(strings_in(stored)))
