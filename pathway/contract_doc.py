"""The tables of ``docs/contract.md``, written from the models in ``pathway/contract.py``.

Part of the document build (``python -m pathway.clinical_doc``, which owns the templates and the
command); nothing the pathway runs imports it. Each table takes the rendering context, of which
it uses only ``note(key)``: the template's ``field:Model.name`` and ``reason:NAME`` notes fill the
"meaning" and "when" cells, so a field or a review reason the template does not describe still
gets its row. The small Markdown helpers here are shared with ``pathway.clinical_doc``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Protocol, Union, get_args, get_origin

from pydantic import BaseModel

from pathway import contract

# --- Markdown ---------------------------------------------------------------------------------


def num(value: float) -> str:
    return f"{value:g}"


def code(text: Any) -> str:
    return f"`{text}`"


def join(items: list[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c`` (or ``a, b or c``)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def table(headers: list[str], rows: Iterable[list[Any]]) -> str:
    """A Markdown table; cells are put on one line and their pipes escaped."""
    def cell(text: Any) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Notes(Protocol):
    """What a contract table needs of the rendering context."""

    def note(self, key: str) -> str | None: ...


# --- Events -----------------------------------------------------------------------------------

def event_models() -> list[type[BaseModel]]:
    """The event classes of the contract's ``Event`` union, in its order."""
    union = get_args(contract.Event)[0]  # Event is Annotated[Union[...], discriminator]
    return [m for m in get_args(union) if isinstance(m, type) and issubclass(m, BaseModel)]


def event_type(model: type[BaseModel]) -> str:
    return str(model.model_fields["type"].default)


def event_types_text() -> str:
    """The event types, each linked to its section."""
    return join([f"[`{event_type(m)}`](#{event_type(m)})" for m in event_models()])


def _common_event_fields() -> list[str]:
    models = event_models()
    return [n for n in models[0].model_fields if n != "type" and all(n in m.model_fields for m in models)]


# --- Field tables -----------------------------------------------------------------------------

def _strict(annotation: Any, metadata: Iterable[Any] = ()) -> bool:
    """Whether pydantic's strict mode is on for a field (so "7" or true is refused)."""
    for meta in metadata:
        if getattr(meta, "strict", None) is True or _strict(None, getattr(meta, "metadata", ())):
            return True
    if annotation is None:
        return False
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        return _strict(base, extra)
    if get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        return any(_strict(a) for a in get_args(annotation))
    return False


def _type_text(s: dict[str, Any]) -> str:
    """A JSON schema node in words."""
    if "$ref" in s:
        return f"an {s['$ref'].rsplit('/', 1)[-1].lower()} object (above)"
    if "anyOf" in s:
        return " or ".join(_type_text(x) for x in s["anyOf"] if x.get("type") != "null")
    if "const" in s:
        return code(json.dumps(s["const"]))
    if "enum" in s:
        if set(s["enum"]) == set(contract.ACTION_KINDS):
            return "an action kind ([the list](clinical-decisions.md#action-kinds))"
        return "one of " + ", ".join(code(v) for v in s["enum"])
    kind = s.get("type")
    if kind == "array":
        items = s.get("items", {})
        if "enum" in items:
            text = "list of " + ", ".join(code(v) for v in items["enum"])
        elif items.get("type") == "object":
            text = "list of objects"
        else:
            text = f"list of {_type_text(items)}" if items else "list"
        return text + (f", at most {s['maxItems']}" if "maxItems" in s else "")
    if kind == "object":
        return "object"
    if kind == "string":
        if s.get("format") == "date-time":
            return "ISO 8601 date-time"
        text = "text"
        if "maxLength" in s:
            text += f", {s.get('minLength', 0)}–{s['maxLength']} characters"
        elif "minLength" in s:
            text += f", at least {s['minLength']} characters"
        return text + (f" matching {code(s['pattern'])}" if "pattern" in s else "")
    words = {"integer": "integer", "number": "number", "boolean": "true or false"}
    text = words.get(kind, kind) if isinstance(kind, str) else "any value"
    if "minimum" in s and "maximum" in s:
        dash = " to " if s["minimum"] < 0 else "–"
        text += f" {num(s['minimum'])}{dash}{num(s['maximum'])}"
    elif "minimum" in s:
        text += f" >= {num(s['minimum'])}"
    elif "maximum" in s:
        text += f" <= {num(s['maximum'])}"
    return text


def fields_table(ctx: Notes, model: type[BaseModel], names: list[str] | None = None,
                 note_prefix: str | None = None) -> str:
    """A model's fields (or the ``names`` among them): type, whether required, meaning."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema["properties"].items():
        if names is not None and name not in names:
            continue
        info = model.model_fields[name]
        type_text = _type_text(prop) + (" (strict)" if _strict(info.annotation, info.metadata) else "")
        if name in required:
            need = "required"
        elif prop.get("default") not in (None, [], {}, ""):
            need = f"optional (default {json.dumps(prop['default'])})"
        else:
            need = "optional"
        meaning = ctx.note(f"field:{note_prefix or model.__name__}.{name}") or prop.get("description", "")
        rows.append([code(name), type_text, need, meaning])
    return table(["field", "type", "required", "meaning"], rows)


def table_event_types(ctx: Notes) -> str:
    """A section per event type, with the fields it has beside the common ones."""
    common = set(_common_event_fields()) | {"type"}
    parts = []
    for model in event_models():
        own = [n for n in model.model_fields if n not in common]
        description = (model.__doc__ or "").strip()
        parts.append(f"### `{event_type(model)}`\n\n{description}\n\n{fields_table(ctx, model, own)}")
    return "\n\n".join(parts)


def table_review_reasons(ctx: Notes) -> str:
    """Every ``details.reason`` of ``request_clinician_review`` the contract knows."""
    rows = [[code(reason), ctx.note(f"reason:{reason}") or "*not described yet: see `pathway/decisions.py`*"]
            for reason in get_args(contract.ReviewReason)]
    return table(["`details.reason`", "when, and what else `details` holds"], rows)


TABLES: dict[str, Callable[[Notes], str]] = {
    "enrollment_fields": lambda ctx: fields_table(ctx, contract.Enrollment),
    "event_common_fields": lambda ctx: fields_table(ctx, event_models()[0], _common_event_fields(), "Event"),
    "event_types": table_event_types,
    "action_fields": lambda ctx: fields_table(ctx, contract.Action),
    "review_reasons": table_review_reasons,
    "scenario_fields": lambda ctx: fields_table(ctx, contract.Scenario),
    "scenario_event_fields": lambda ctx: fields_table(ctx, contract.ScenarioEvent),
}
