"""How contract JSON is read, by the API, the command line and scenario files alike.

- A key given twice in one object is refused: JSON parsers disagree on ``{"id": "a", "id": "b"}``
  (first wins, last wins, refused), so a text two readers could read differently is never quietly
  taken as its last key.
- A whole number is an integer: JSON (and its Schema) make no difference between 4 and 4.0, so
  ``"nrs": 4.0`` passes the contract's strict integer check as 4 does.
- ``NaN`` and ``Infinity`` are not JSON and are refused.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    """An object gave this key more than once."""

    def __init__(self, key: str):
        super().__init__(f"{key}: a key given more than once in one JSON object")
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey(key)
        obj[key] = value
    return obj


def whole_number(text: str) -> int | float:
    """A JSON number's text as the contract reads it: an integer when it is whole."""
    value = float(text)
    return int(value) if value.is_integer() else value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes) -> Any:
    """The JSON value of ``text``; :class:`DuplicateKey`, :class:`json.JSONDecodeError` or
    :class:`ValueError` (``NaN``, ``Infinity``) if the contract cannot read it."""
    return json.loads(text, parse_constant=_no_constant, parse_float=whole_number, object_pairs_hook=_object)
