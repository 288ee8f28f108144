"""Writes ``docs/clinical-decisions.md`` and ``docs/contract.md`` from their templates.

A build tool, not part of the pathway: nothing the workflow, the worker, the API or the CLI runs
imports it (it reads files; the rest of ``pathway`` does not). The prose lives in
``docs/templates/``; every table, threshold, timing and code comes from the pathway definition
in ``seeds/`` and from the models in ``pathway/contract.py``, so the documents cannot say one
thing while the seed or the models say another. ``tests/unit/test_clinical_doc.py`` checks that
the committed documents are what this module writes.

    python -m pathway.clinical_doc           # write both documents
    python -m pathway.clinical_doc --check   # exit 1 if a committed document is out of date

Template syntax:

- ``<!-- generated:NAME -->`` alone on a line is replaced by the table ``NAME`` (``TABLES``).
- ``{{name}}`` is a value of the current definition: a rule (``{{review_day}}`` -> 84), a
  schedule (``{{radiograph_days}}`` -> "14, 42 and 84"; ``{{radiograph_days:weeks}}`` -> "2, 6
  and 12"; ``:months`` and ``:percent`` too), or a setting of ``_settings``.
- A block from a line ``<!-- notes`` to a line ``-->`` holds ``key: text`` entries (an indented
  line continues the one above) that fill table cells and are not printed themselves:
  ``action:KIND`` says when an action kind fires, ``field:Model.name`` what a contract field
  means (``field:Event.name`` for the fields every event has).
- ``<!-- template: ... -->`` lines are notes for the template's reader; they are dropped.

An unknown table, placeholder or note key is an error, so prose cannot outlive what it
describes. Rules, schedules and action kinds without prose still get their rows.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pathway import contract
from pathway.decisions import CANCELLED_ON_EXIT
from pathway.facts import GRACE
from pathway.guideline import CURRENT_DEFINITION, SEEDS_DIR, Code, PathwayDefinition, Rule, load_definition

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TEMPLATES = DOCS / "templates"
DOCUMENTS = ("clinical-decisions.md", "contract.md")
COMMAND = "python -m pathway.clinical_doc"

STATUS_TEXT = {"confirmed": "confirmed", "local_protocol": "local protocol", "verify": "verify"}
_WEAKNESS = {"confirmed": 0, "local_protocol": 1, "verify": 2}
SYSTEMS = {
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
}
# Top-level fields of a definition that have their own table or placeholder.
_SHOWN = {"version", "title", "guideline_file", "references", "rules", "schedules",
          "urgent_mri_red_flags", "actions"}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)(?::([a-z]+))?\s*\}\}")
_MARKER = re.compile(r"^<!-- generated:([a-z_]+) -->$", re.MULTILINE)
_NOTE = re.compile(r"^((?:action|field):[A-Za-z0-9_.]+):(.*)$")


class TemplateError(ValueError):
    """A template that names something the definition or the models do not have."""


# --- Small formatting helpers -----------------------------------------------------------------

def _num(value: float) -> str:
    return f"{value:g}"


def _join(items: list[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c`` (or ``a, b or c``)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def _code(text: Any) -> str:
    return f"`{text}`"


def _cell(text: Any) -> str:
    """Text that is safe in a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(headers: list[str], rows: Iterable[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _weakest(statuses: Iterable[str]) -> str:
    return max(statuses, key=_WEAKNESS.__getitem__, default="confirmed")


def _code_status(code: Code) -> str:
    """A code is to verify when it is missing or its display says so."""
    return "verify" if code.code is None or "verify" in code.display.lower() else "confirmed"


def _version_key(version: str) -> list[Any]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version) if p]


# --- Templates ----------------------------------------------------------------------------------

@dataclass
class Template:
    """A template's text (notes block and template comments removed) and its notes."""

    name: str
    text: str
    notes: dict[str, str] = field(default_factory=dict)


def parse_template(name: str, text: str) -> Template:
    """Split a template into its printed text and its ``<!-- notes`` entries."""
    kept: list[str] = []
    notes: dict[str, str] = {}
    key: str | None = None
    in_notes = False
    for line in text.splitlines():
        if line.strip() == "<!-- notes":
            in_notes = True
        elif in_notes and line.strip() == "-->":
            in_notes, key = False, None
        elif in_notes:
            if not line.strip():
                key = None
            elif line[0].isspace() and key:
                notes[key] += " " + line.strip()
            else:
                entry = _NOTE.match(line)
                if not entry:
                    raise TemplateError(f"{name}: a note reads 'action:KIND: text' or 'field:Model.name: text', "
                                        f"not {line!r}")
                key = entry.group(1)
                if key in notes:
                    raise TemplateError(f"{name}: note {key} is given twice")
                notes[key] = entry.group(2).strip()
        elif not (line.startswith("<!-- template:") and line.rstrip().endswith("-->")):
            kept.append(line)
    if in_notes:
        raise TemplateError(f"{name}: a '<!-- notes' block is not closed by a '-->' line")
    return Template(name, "\n".join(kept).strip() + "\n", notes)


@dataclass
class Context:
    """What a document is rendered from, and which notes and values it used."""

    defn: PathwayDefinition
    template: Template
    used_notes: set[str] = field(default_factory=set)

    def note(self, key: str) -> str | None:
        if key in self.template.notes:
            self.used_notes.add(key)
            return self.fill(self.template.notes[key])
        return None

    def fill(self, text: str) -> str:
        """Replace ``{{name}}`` placeholders with the definition's values."""
        return _PLACEHOLDER.sub(lambda m: placeholder(self.defn, m.group(1), m.group(2), self.template.name), text)


def _sourced_items(defn: PathwayDefinition) -> dict[str, Any]:
    """Every rule and schedule the definition sets, by name."""
    items = {name: item for name, item in defn.rules if item is not None}
    items.update({name: item for name, item in defn.schedules if item is not None})
    return items


def _settings(defn: PathwayDefinition) -> dict[str, str]:
    """Values that prose may name besides rules and schedules."""
    return {
        "version": defn.version,
        "title": defn.title,
        "guideline_file": f"seeds/{defn.guideline_file}",
        "definition_file": f"seeds/{CURRENT_DEFINITION}",
        "urgent_mri_red_flags": _join([_code(f) for f in defn.urgent_mri_red_flags], "or"),
        "cancelled_on_exit": _join([_code(k) for k in CANCELLED_ON_EXIT]),
        "grace_seconds": _num(round(GRACE * 86400, 3)),
        "event_types": _join([f"[`{_event_type(m)}`](#{_event_type(m)})" for m in event_models()]),
    }


def placeholder(defn: PathwayDefinition, name: str, fmt: str | None, where: str = "") -> str:
    """The text of ``{{name}}`` or ``{{name:fmt}}`` for this definition."""
    item = _sourced_items(defn).get(name)
    if item is None:
        settings = _settings(defn)
        if name in settings and fmt is None:
            return settings[name]
        raise TemplateError(f"{where}: {{{{{name}{':' + fmt if fmt else ''}}}}} names nothing in "
                            f"definition {defn.version}")
    numbers = list(getattr(item, "days", None) or [getattr(item, "value")])
    if fmt == "weeks":
        numbers = [n / 7 for n in numbers]
    elif fmt == "months":
        numbers = [round(n / 30.4) for n in numbers]  # as the screening rationale counts them
    elif fmt == "percent":
        return _join([f"{_num(round(n * 100, 6))}%" for n in numbers])
    elif fmt is not None:
        raise TemplateError(f"{where}: {{{{{name}:{fmt}}}}}: the formats are weeks, months and percent")
    return _join([_num(n) for n in numbers])


def _placeholders_in(text: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(text)]


# --- Clinical decisions: tables ------------------------------------------------------------------

def _value_text(item: Any) -> str:
    if hasattr(item, "days"):
        return ", ".join(str(d) for d in item.days)
    if hasattr(item, "value"):
        return _num(item.value)
    return json.dumps(item.model_dump(exclude={"section", "refs", "verify", "note", "local_protocol"}))


def _refs(refs: list[str]) -> str:
    return ", ".join(refs) if refs else "—"


def table_rules(ctx: Context) -> str:
    defn = ctx.defn
    rows = [[_code(name), _value_text(rule), getattr(rule, "unit", ""), STATUS_TEXT[rule.status],
             rule.section, _refs(rule.refs), rule.note]
            for name, rule in defn.rules if rule is not None]
    text = _table(["rule", "value", "unit", "status", "guideline section", "refs", "note and evidence"], rows)
    absent = [name for name, rule in defn.rules if rule is None]
    if absent:
        text += (f"\n\nRules this code knows that {defn.version} does not set (the decisions that "
                 f"need them do not run): {_join([_code(n) for n in absent])}.")
    return text


def table_schedules(ctx: Context) -> str:
    rows = [[_code(name), _value_text(s), STATUS_TEXT[s.status], s.section, _refs(s.refs), s.note]
            for name, s in ctx.defn.schedules if s is not None]
    return _table(["schedule", "days after enrollment", "status", "guideline section", "refs", "note"], rows)


def _codes_text(spec: Any) -> str:
    if not spec.codes:
        return "—"
    return "<br>".join(
        f"{SYSTEMS.get(c.system, c.system)} {_code(c.code) if c.code else '(no code)'} {c.display}: "
        f"**{STATUS_TEXT[_code_status(c)]}**" for c in spec.codes)


def action_status(defn: PathwayDefinition, kind: str, trigger: str | None) -> str:
    """The weakest of: the rules and schedules the trigger names, the codes, the section."""
    spec = defn.actions[kind]  # type: ignore[index]
    items = _sourced_items(defn)
    statuses = [items[n].status for n in _placeholders_in(trigger or "") if n in items]
    statuses += [_code_status(c) for c in spec.codes]
    if "verify" in spec.section.lower():
        statuses.append("verify")
    return _weakest(statuses)


def table_actions(ctx: Context) -> str:
    defn = ctx.defn
    rows = []
    for kind, spec in defn.actions.items():
        raw = ctx.template.notes.get(f"action:{kind}")
        when = ctx.note(f"action:{kind}") or "*not described yet: see `pathway/decisions.py`*"
        rows.append([_code(kind), spec.title, when, spec.resource, _codes_text(spec),
                     STATUS_TEXT[action_status(defn, kind, raw)], defn.cite(kind)])
    return _table(["kind", "title", "when it fires", "resource", "codes", "status", "citation it carries"], rows)


def table_references(ctx: Context) -> str:
    return _table(["ref", "source"], [[n, text] for n, text in ctx.defn.references.items()])


def table_other_settings(ctx: Context) -> str:
    """Top-level settings of the definition that no other table shows (none in vcf-1.1)."""
    extra = {name: value for name, value in ctx.defn if name not in _SHOWN}
    if not extra:
        return ""
    rows = [[_code(name), _code(json.dumps(value, default=_jsonable))] for name, value in extra.items()]
    return "### Other settings\n\n" + _table(["setting", "value"], rows)


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else str(value)


def _raw_status(raw: dict[str, Any]) -> str:
    """The status of a rule or schedule read from JSON, by the rule of ``_Sourced.status``."""
    return Rule.model_construct(verify=bool(raw.get("verify")), local_protocol=bool(raw.get("local_protocol"))).status


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a definition changed in rules, schedules and action kinds, against the one before."""
    parts: list[str] = []
    for group, what in (("rules", "value"), ("schedules", "days")):
        old, new = before.get(group, {}), after.get(group, {})
        if added := [n for n in new if n not in old]:
            parts.append(f"added {group} {', '.join(_code(n) for n in added)}")
        if removed := [n for n in old if n not in new]:
            parts.append(f"removed {group} {', '.join(_code(n) for n in removed)}")
        for n in (n for n in new if n in old):
            if old[n].get(what) != new[n].get(what):
                parts.append(f"{_code(n)} {old[n].get(what)} → {new[n].get(what)}")
            if _raw_status(old[n]) != _raw_status(new[n]):
                parts.append(f"{_code(n)} {STATUS_TEXT[_raw_status(old[n])]} → {STATUS_TEXT[_raw_status(new[n])]}")
    old, new = before.get("actions", {}), after.get("actions", {})
    if added := [k for k in new if k not in old]:
        parts.append(f"added action kinds {', '.join(_code(k) for k in added)}")
    if removed := [k for k in old if k not in new]:
        parts.append(f"removed action kinds {', '.join(_code(k) for k in removed)}")
    if changed := [k for k in new if k in old and old[k].get("codes") != new[k].get("codes")]:
        parts.append(f"new codes for {', '.join(_code(k) for k in changed)}")
    return "; ".join(parts) or "no change to rules, schedules or action kinds"


def released_definitions(seeds: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every pathway definition in ``seeds/`` (file name, JSON), oldest version first."""
    found = []
    for path in sorted((seeds or SEEDS_DIR).glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("version"), str) and "rules" in raw:
            found.append((path.name, raw))
    return sorted(found, key=lambda pair: _version_key(pair[1]["version"]))


def table_versions(ctx: Context) -> str:
    rows, before = [], None
    for name, raw in released_definitions():
        try:
            PathwayDefinition.model_validate(raw)
            loads = ""
        except ValidationError:
            loads = " (does not load with this code)"
        version = _code(raw["version"])
        if name == CURRENT_DEFINITION:
            version = f"**{version}** (current, documented here)"
        rows.append([_code(f"seeds/{name}"), version + loads, len(raw.get("rules", {})),
                     len(raw.get("schedules", {})), len(raw.get("actions", {})),
                     _changes(before, raw) if before is not None else "—"])
        before = raw
    return _table(["file", "version", "rules", "schedules", "action kinds", "changes from the version above"], rows)


# --- Contract: field tables from the pydantic models -----------------------------------------------

def event_models() -> list[type[BaseModel]]:
    """The event classes of the contract's ``Event`` union, in its order."""
    union = get_args(contract.Event)[0] if get_origin(contract.Event) is Annotated else contract.Event
    return [m for m in get_args(union) if isinstance(m, type) and issubclass(m, BaseModel)]


def _event_type(model: type[BaseModel]) -> str:
    return model.model_fields["type"].default


def _common_event_fields() -> list[str]:
    models = event_models()
    return [n for n in models[0].model_fields if n != "type" and all(n in m.model_fields for m in models)]


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


def _enum_text(values: list[Any]) -> str:
    if set(values) == set(contract.ACTION_KINDS):
        return "an action kind ([the list](clinical-decisions.md#action-kinds))"
    return "one of " + ", ".join(_code(v) for v in values)


def _type_text(s: dict[str, Any]) -> str:
    """A JSON schema node in words."""
    if "$ref" in s:
        return f"an {s['$ref'].rsplit('/', 1)[-1].lower()} object (above)"
    if "anyOf" in s:
        return " or ".join(_type_text(x) for x in s["anyOf"] if x.get("type") != "null")
    if "const" in s:
        return _code(json.dumps(s["const"]))
    if "enum" in s:
        return _enum_text(s["enum"])
    kind = s.get("type")
    if kind == "array":
        items = s.get("items", {})
        if "enum" in items:
            text = "list of " + ", ".join(_code(v) for v in items["enum"])
        elif items.get("type") == "object":
            text = "list of objects"
        else:
            text = f"list of {_type_text(items)}" if items else "list"
        if "maxItems" in s:
            text += f", at most {s['maxItems']}"
        return text
    if kind == "object":
        return "object"
    if kind == "string":
        if s.get("format") == "date-time":
            return "ISO 8601 date-time"
        text = "text"
        if "minLength" in s or "maxLength" in s:
            text += f", {s.get('minLength', 0)}–{s['maxLength']} characters" if "maxLength" in s \
                else f", at least {s['minLength']} characters"
        if "pattern" in s:
            text += f" matching {_code(s['pattern'])}"
        return text
    words = {"integer": "integer", "number": "number", "boolean": "true or false"}
    text = words.get(kind, kind or "any value")
    if "minimum" in s and "maximum" in s:
        dash = " to " if s["minimum"] < 0 else "–"
        text += f" {_num(s['minimum'])}{dash}{_num(s['maximum'])}"
    elif "minimum" in s:
        text += f" >= {_num(s['minimum'])}"
    elif "maximum" in s:
        text += f" <= {_num(s['maximum'])}"
    return text


def _field_rows(ctx: Context, model: type[BaseModel], names: list[str] | None = None,
                note_prefix: str | None = None) -> list[list[str]]:
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
        rows.append([_code(name), type_text, need, meaning])
    return rows


def _fields_table(ctx: Context, model: type[BaseModel], names: list[str] | None = None,
                  note_prefix: str | None = None) -> str:
    return _table(["field", "type", "required", "meaning"], _field_rows(ctx, model, names, note_prefix))


def table_enrollment_fields(ctx: Context) -> str:
    return _fields_table(ctx, contract.Enrollment)


def table_event_common_fields(ctx: Context) -> str:
    return _fields_table(ctx, event_models()[0], _common_event_fields(), note_prefix="Event")


def table_event_types(ctx: Context) -> str:
    common = set(_common_event_fields()) | {"type"}
    parts = []
    for model in event_models():
        own = [n for n in model.model_fields if n not in common]
        description = (model.__doc__ or "").strip()
        parts.append(f"### `{_event_type(model)}`\n\n{description}\n\n{_fields_table(ctx, model, own)}")
    return "\n\n".join(parts)


def table_action_fields(ctx: Context) -> str:
    return _fields_table(ctx, contract.Action)


def table_scenario_fields(ctx: Context) -> str:
    return _fields_table(ctx, contract.Scenario)


def table_scenario_event_fields(ctx: Context) -> str:
    return _fields_table(ctx, contract.ScenarioEvent)


TABLES: dict[str, Callable[[Context], str]] = {
    "versions": table_versions,
    "rules": table_rules,
    "schedules": table_schedules,
    "actions": table_actions,
    "references": table_references,
    "other_settings": table_other_settings,
    "enrollment_fields": table_enrollment_fields,
    "event_common_fields": table_event_common_fields,
    "event_types": table_event_types,
    "action_fields": table_action_fields,
    "scenario_fields": table_scenario_fields,
    "scenario_event_fields": table_scenario_event_fields,
}


# --- Documents --------------------------------------------------------------------------------------

def render(template: Template, defn: PathwayDefinition) -> str:
    """A document from its template and a definition."""
    ctx = Context(defn, template)

    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise TemplateError(f"{template.name}: no table named {name!r}; tables: {', '.join(TABLES)}")
        return TABLES[name](ctx)

    body = ctx.fill(_MARKER.sub(table, template.text))
    unused = sorted(set(template.notes) - ctx.used_notes)
    if unused:
        raise TemplateError(f"{template.name}: notes for nothing in this document or definition "
                            f"{defn.version}: {', '.join(unused)}")
    body = re.sub(r"\n{3,}", "\n\n", body)
    header = (f"<!-- Written by `{COMMAND}` from docs/templates/{template.name}, "
              f"seeds/{CURRENT_DEFINITION} and pathway/contract.py: edit those, not this file. -->\n")
    return header + body


def render_documents(defn: PathwayDefinition | None = None, templates: Path = TEMPLATES) -> dict[Path, str]:
    """Each document's path and the text it should have."""
    defn = defn or load_definition()
    out = {}
    for name in DOCUMENTS:
        template = parse_template(name, (templates / name).read_text(encoding="utf-8"))
        out[DOCS / name] = render(template, defn)
    return out


def undescribed_action_kinds(defn: PathwayDefinition, templates: Path = TEMPLATES) -> list[str]:
    """Action kinds of the definition whose "when it fires" the template does not give yet."""
    template = parse_template(DOCUMENTS[0], (templates / DOCUMENTS[0]).read_text(encoding="utf-8"))
    return [kind for kind in defn.actions if f"action:{kind}" not in template.notes]


def main(argv: list[str] | None = None) -> int:
    """Write the documents, or with ``--check`` say which are out of date."""
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a document is out of date")
    args = p.parse_args(argv)
    try:
        documents = render_documents()
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = [path for path, text in documents.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run {COMMAND}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(documents[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    for kind in undescribed_action_kinds(load_definition()):
        print(f"note: say when {kind} fires in docs/templates/{DOCUMENTS[0]} (an 'action:{kind}:' note)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
