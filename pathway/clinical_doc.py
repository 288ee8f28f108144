"""Writes ``docs/clinical-decisions.md`` and ``docs/contract.md`` from their templates.

A build tool, not part of the pathway: nothing the workflow, the worker, the API or the CLI runs
imports it. The prose lives in ``docs/templates/``; every table, threshold, timing and code comes
from the pathway definition in ``seeds/`` and from the models in ``pathway/contract.py`` (whose
tables ``pathway/contract_doc.py`` writes), so the documents cannot say one thing while the seed
or the models say another. ``tests/unit/test_clinical_doc.py`` checks that the committed
documents are what this module writes.

    python -m pathway.clinical_doc           # write both documents
    python -m pathway.clinical_doc --check   # exit 1 if a committed document is out of date

Template syntax:

- ``<!-- generated:NAME -->`` alone on a line is replaced by the document's table ``NAME``.
- ``{{name}}`` is a value of the current definition: a rule (``{{review_day}}`` -> 84), a rule of
  the ``safety`` block (``{{review_hold_until_day}}`` -> 182), a schedule (``{{radiograph_days}}``
  -> "14, 42 and 84"; ``{{radiograph_days:weeks}}`` -> "2, 6 and 12"; ``:months`` and
  ``:percent`` too), or a setting of ``_settings``.
- A block from a line ``<!-- notes`` to a line ``-->`` holds ``key: text`` entries (an indented
  line continues the one above) that fill table cells and are not printed themselves:
  ``action:KIND`` says when an action kind fires, ``field:Model.name`` what a contract field
  means (``field:Event.name`` for the fields every event has), ``reason:NAME`` when a clinician
  review of that reason is requested.
- ``<!-- template: ... -->`` lines are notes for the template's reader; they are dropped.

An unknown table, placeholder or note key is an error, so prose cannot outlive what it
describes. Rules, schedules, action kinds and review reasons without prose still get their rows.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from pathway import contract_doc
from pathway.contract import FRACTURE_LEVELS, ActionKind
from pathway.contract_doc import code, join, num, table
from pathway.decisions import CANCELLED_ON_EXIT
from pathway.facts import GRACE
from pathway.guideline import CURRENT_DEFINITION, SEEDS_DIR, Code, PathwayDefinition, Rule, load_definition

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TEMPLATES = DOCS / "templates"
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
# Top-level fields of a definition, and fields of its safety block, that have their own table or
# placeholder; the others are listed under "Other settings".
_SHOWN = {"version", "title", "guideline_file", "references", "rules", "schedules", "level_aware",
          "urgent_mri_red_flags", "actions", "safety"}
_SHOWN_SAFETY = {"rules", "calcitonin_withheld_red_flags"}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)(?::([a-z]+))?\s*\}\}")
_MARKER = re.compile(r"^<!-- generated:([a-z_]+) -->$", re.MULTILINE)
_NOTE = re.compile(r"^((?:action|field|reason):[A-Za-z0-9_.]+):(.*)$")
_UNDESCRIBED = "*not described yet: see `pathway/decisions.py`*"


class TemplateError(ValueError):
    """A template that names something the definition or the models do not have."""


# --- Templates and placeholders --------------------------------------------------------------

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
                    raise TemplateError(f"{name}: a note reads 'action:KIND: text', 'field:Model.name: text' "
                                        f"or 'reason:NAME: text', not {line!r}")
                key = entry.group(1)
                if key in notes:
                    raise TemplateError(f"{name}: note {key} is given twice")
                notes[key] = entry.group(2).strip()
        elif not (line.startswith("<!-- template:") and line.rstrip().endswith("-->")):
            kept.append(line)
    if in_notes:
        raise TemplateError(f"{name}: a '<!-- notes' block is not closed by a '-->' line")
    return Template(name, "\n".join(kept).strip() + "\n", notes)


def read_template(name: str, templates: Path = TEMPLATES) -> Template:
    return parse_template(name, (templates / name).read_text(encoding="utf-8"))


@dataclass
class Context:
    """What a document is rendered from, and which notes it used."""

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


def safety_rules(defn: PathwayDefinition) -> list[tuple[str, Rule]]:
    """The rules of the definition's ``safety`` block (none before vcf-1.2)."""
    return list(defn.safety.rules) if defn.safety is not None else []


def _sourced_items(defn: PathwayDefinition) -> dict[str, Any]:
    """Every rule, safety rule and schedule the definition sets, by name."""
    items = {name: item for name, item in defn.rules if item is not None}
    for name, item in [*safety_rules(defn), *defn.schedules]:
        if name in items:
            raise TemplateError(f"definition {defn.version}: {name} is named twice")
        if item is not None:
            items[name] = item
    return items


def _settings(defn: PathwayDefinition) -> dict[str, str]:
    """Values that prose may name besides rules and schedules."""
    settings = {
        "version": defn.version,
        "title": defn.title,
        "guideline_file": f"seeds/{defn.guideline_file}",
        "definition_file": f"seeds/{CURRENT_DEFINITION}",
        "urgent_mri_red_flags": join([code(f) for f in defn.urgent_mri_red_flags], "or"),
        "cancelled_on_exit": join([code(k) for k in CANCELLED_ON_EXIT]),
        "grace_seconds": num(round(GRACE * 86400, 3)),
        "event_types": contract_doc.event_types_text(),
    }
    if defn.safety is not None:
        safety = defn.safety
        settings["calcitonin_withheld_red_flags"] = join([code(f) for f in safety.calcitonin_withheld_red_flags], "or")
        settings["review_evidence_from_day"] = num(defn.rules.review_day.value
                                                   - safety.rules.review_evidence_window_days.value)
    return settings


def placeholder(defn: PathwayDefinition, name: str, fmt: str | None, where: str = "") -> str:
    """The text of ``{{name}}`` or ``{{name:fmt}}`` for this definition."""
    item = _sourced_items(defn).get(name)
    if item is None:
        settings = _settings(defn)
        if name in settings and fmt is None:
            return settings[name]
        raise TemplateError(f"{where}: {{{{{name}{':' + fmt if fmt else ''}}}}} names nothing in "
                            f"definition {defn.version}")
    numbers = list(getattr(item, "days", None) or [item.value])
    if fmt == "weeks":
        numbers = [n / 7 for n in numbers]
    elif fmt == "months":
        numbers = [round(n / 30.4) for n in numbers]  # as the screening rationale counts them
    elif fmt == "percent":
        return join([f"{num(round(n * 100, 6))}%" for n in numbers])
    elif fmt is not None:
        raise TemplateError(f"{where}: {{{{{name}:{fmt}}}}}: the formats are weeks, months and percent")
    return join([num(n) for n in numbers])


# --- Clinical decisions: rules, schedules, action kinds ---------------------------------------

def _weakest(statuses: Iterable[str]) -> str:
    return max(statuses, key=_WEAKNESS.__getitem__, default="confirmed")


def _code_status(c: Code) -> str:
    """A code is to verify when it is missing or its display says so."""
    return "verify" if c.code is None or "verify" in c.display.lower() else "confirmed"


def _value_text(item: Any) -> str:
    if hasattr(item, "days"):
        return ", ".join(str(d) for d in item.days)
    if hasattr(item, "value"):
        return num(item.value)
    return json.dumps(item.model_dump(exclude={"section", "refs", "verify", "note", "local_protocol"}))


def _sourced_table(first: str, items: Iterable[tuple[str, Any]], unit: bool = True) -> str:
    """Rules or schedules with their value, status, guideline section, references and note."""
    rows = [[code(name), _value_text(item), *([getattr(item, "unit", "")] if unit else []),
             STATUS_TEXT[item.status], item.section, ", ".join(item.refs) or "—", item.note]
            for name, item in items if item is not None]
    headers = [first, "value" if unit else "days after enrollment", *(["unit"] if unit else []),
               "status", "guideline section", "refs", "note and evidence"]
    return table(headers, rows)


def table_rules(ctx: Context) -> str:
    defn = ctx.defn
    text = _sourced_table("rule", defn.rules)
    absent = [name for name, rule in defn.rules if rule is None]
    if absent:
        text += (f"\n\nRules this code knows that {defn.version} does not set (the decisions that "
                 f"need them do not run): {join([code(n) for n in absent])}.")
    return text


def table_safety_rules(ctx: Context) -> str:
    if ctx.defn.safety is None:
        return (f"{ctx.defn.version} has no `safety` block: the safety rules of vcf-1.2 do not apply to "
                "its patients.")
    return _sourced_table("safety rule", safety_rules(ctx.defn))


def table_schedules(ctx: Context) -> str:
    return _sourced_table("schedule", ctx.defn.schedules, unit=False)


def action_status(defn: PathwayDefinition, kind: str, trigger: str | None) -> str:
    """The weakest of: the rules and schedules the trigger names, the codes, the section."""
    spec = defn.actions[cast(ActionKind, kind)]
    statuses = [item.status for item in _rules_named(defn, trigger)]
    statuses += [_code_status(c) for c in spec.codes]
    if "verify" in spec.section.lower():
        statuses.append("verify")
    return _weakest(statuses)


def _codes_text(spec: Any) -> str:
    return "<br>".join(
        f"{SYSTEMS.get(c.system, c.system)} {code(c.code) if c.code else '(no code)'} {c.display}: "
        f"**{STATUS_TEXT[_code_status(c)]}**" for c in spec.codes) or "—"


def table_actions(ctx: Context) -> str:
    defn = ctx.defn
    by_level = set(defn.level_aware.orders) if defn.level_aware else set()
    rows = [[code(kind), spec.title, ctx.note(f"action:{kind}") or _UNDESCRIBED, spec.resource,
             "by the fractured level's region: [Level-aware orders](#level-aware-orders)" if kind in by_level
             else _codes_text(spec),
             STATUS_TEXT[action_status(defn, kind, ctx.template.notes.get(f"action:{kind}"))],
             defn.cite(kind, _rules_named(defn, ctx.template.notes.get(f"action:{kind}")))]
            for kind, spec in defn.actions.items()]
    return table(["kind", "title", "when it fires", "resource", "codes", "status", "citation it carries"], rows)


def _rules_named(defn: PathwayDefinition, trigger: str | None) -> tuple[Any, ...]:
    """The rules and schedules a trigger's text names: what the action rests on, so that its citation
    says "(verify)" as it does when the action fires (where one of them may make it fire)."""
    items = _sourced_items(defn)
    return tuple(items[m.group(1)] for m in _PLACEHOLDER.finditer(trigger or "") if m.group(1) in items)


def table_level_orders(ctx: Context) -> str:
    """The region, title and codes each level-aware order goes out with, and the nerve-block scope."""
    level_aware = ctx.defn.level_aware
    if level_aware is None:
        return (f"{ctx.defn.version} is not level-aware: every order goes out with its action kind's own title "
                "and codes.")
    rows = [[code(kind), _levels_text(row.levels), row.region, row.title, _codes_text(row)]
            for kind, rows_ in level_aware.orders.items() for row in rows_]
    scope = level_aware.nerve_block_scope
    return (table(["order", "levels", "region", "title", "codes"], rows)
            + f"\n\nNerve-root block offer: only for {join([code(level) for level in scope.levels])} "
            f"(**{STATUS_TEXT[scope.status]}**; {scope.cite()}). {scope.note}")


def _levels_text(levels: Iterable[str]) -> str:
    """T1–T10, T11–L1: a run of consecutive levels as its first and last."""
    index = sorted(FRACTURE_LEVELS.index(level) for level in levels)
    runs: list[list[int]] = []
    for i in index:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(FRACTURE_LEVELS[r[0]] + (f"–{FRACTURE_LEVELS[r[-1]]}" if len(r) > 1 else "") for r in runs)


def table_references(ctx: Context) -> str:
    return table(["ref", "source"], [[n, text] for n, text in ctx.defn.references.items()])


def table_other_settings(ctx: Context) -> str:
    """Settings of the definition that no other table or placeholder shows (none in vcf-1.2)."""
    extra = {name: value for name, value in ctx.defn if name not in _SHOWN}
    if ctx.defn.safety is not None:
        extra |= {f"safety.{n}": v for n, v in ctx.defn.safety if n not in _SHOWN_SAFETY}
    if not extra:
        return ""
    rows = [[code(name), code(json.dumps(value, default=_jsonable))] for name, value in extra.items()]
    return "### Other settings\n\n" + table(["setting", "value"], rows)


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else str(value)


# --- Clinical decisions: released versions ------------------------------------------------------

def _raw_status(raw: dict[str, Any]) -> str:
    """The status of a rule or schedule read from JSON, by the rule of ``_Sourced.status``."""
    return Rule.model_construct(section="", value=0, unit="", verify=bool(raw.get("verify")),
                                local_protocol=bool(raw.get("local_protocol"))).status


def _groups(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A definition's rules, safety rules and schedules as JSON, by group name."""
    return {"rules": raw.get("rules", {}), "safety rules": (raw.get("safety") or {}).get("rules", {}),
            "schedules": raw.get("schedules", {})}


def _added_removed(what: str, old: Iterable[str], new: Iterable[str]) -> list[str]:
    old, new = list(old), list(new)
    added, removed = [n for n in new if n not in old], [n for n in old if n not in new]
    return ([f"added {what} {', '.join(code(n) for n in added)}"] if added else []) + \
           ([f"removed {what} {', '.join(code(n) for n in removed)}"] if removed else [])


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a definition changed in rules, schedules, red flags and action kinds, against the one before."""
    parts: list[str] = []
    for group, old in _groups(before).items():
        new = _groups(after)[group]
        parts += _added_removed(group, old, new)
        for n in (n for n in new if n in old):
            what = "days" if group == "schedules" else "value"
            if old[n].get(what) != new[n].get(what):
                parts.append(f"{code(n)} {old[n].get(what)} → {new[n].get(what)}")
            if _raw_status(old[n]) != _raw_status(new[n]):
                parts.append(f"{code(n)} {STATUS_TEXT[_raw_status(old[n])]} → {STATUS_TEXT[_raw_status(new[n])]}")
    for flags, old, new in (("urgent_mri_red_flags", before.get("urgent_mri_red_flags", []),
                             after.get("urgent_mri_red_flags", [])),
                            ("calcitonin_withheld_red_flags",
                             (before.get("safety") or {}).get("calcitonin_withheld_red_flags", []),
                             (after.get("safety") or {}).get("calcitonin_withheld_red_flags", []))):
        if diff := [f"+{code(f)}" for f in new if f not in old] + [f"-{code(f)}" for f in old if f not in new]:
            parts.append(f"{code(flags)} {' '.join(diff)}")
    old, new = before.get("actions", {}), after.get("actions", {})
    parts += _added_removed("action kinds", old, new)
    for what, key in (("titles", "title"), ("codes", "codes")):
        if changed := [k for k in new if k in old and old[k].get(key) != new[k].get(key)]:
            parts.append(f"new {what} for {', '.join(code(k) for k in changed)}")
    return "; ".join(parts) or "no change to rules, schedules, red flags or action kinds"


def released_definitions(seeds: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every pathway definition in ``seeds/`` (file name, JSON), oldest version first; unlike
    ``guideline.released_definitions`` it also lists a definition this code cannot load."""
    found = []
    for path in sorted((seeds or SEEDS_DIR).glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("version"), str) and "rules" in raw:
            found.append((path.name, raw))
    return sorted(found, key=lambda pair: _version_key(pair[1]["version"]))


def _version_key(version: str) -> list[Any]:
    """``vcf-1.10`` after ``vcf-1.2``: numbers compare as numbers."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version) if p]


def table_versions(ctx: Context) -> str:
    rows, before = [], None
    for name, raw in released_definitions():
        try:
            PathwayDefinition.model_validate(raw)
            loads = ""
        except ValidationError:
            loads = " (does not load with this code)"
        version = code(raw["version"])
        if name == CURRENT_DEFINITION:
            version = f"**{version}** (current, documented here)"
        groups = _groups(raw)
        rules = str(len(groups["rules"]))
        if groups["safety rules"]:
            rules += f" + {len(groups['safety rules'])} safety"
        rows.append([code(f"seeds/{name}"), version + loads, rules, len(groups["schedules"]),
                     len(raw.get("actions", {})), _changes(before, raw) if before is not None else "—"])
        before = raw
    return table(["file", "version", "rules", "schedules", "action kinds", "changes from the version above"], rows)


# --- Documents ------------------------------------------------------------------------------------

Tables = Mapping[str, Callable[[Context], str]]
CLINICAL_TABLES: Tables = {
    "versions": table_versions,
    "rules": table_rules,
    "safety_rules": table_safety_rules,
    "schedules": table_schedules,
    "level_orders": table_level_orders,
    "actions": table_actions,
    "references": table_references,
    "other_settings": table_other_settings,
}
# Each document and the tables its template may place.
DOCUMENTS: dict[str, Tables] = {"clinical-decisions.md": CLINICAL_TABLES, "contract.md": contract_doc.TABLES}


def render(template: Template, defn: PathwayDefinition, tables: Tables | None = None) -> str:
    """A document from its template and a definition (``tables``: those of its document, by
    default every table of either document)."""
    tables = tables if tables is not None else {**CLINICAL_TABLES, **contract_doc.TABLES}
    ctx = Context(defn, template)

    def generated(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in tables:
            raise TemplateError(f"{template.name}: no table named {name!r}; tables: {', '.join(tables)}")
        return tables[name](ctx)

    body = ctx.fill(_MARKER.sub(generated, template.text))
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
    return {DOCS / name: render(read_template(name, templates), defn, tables) for name, tables in DOCUMENTS.items()}


def undescribed_action_kinds(defn: PathwayDefinition, templates: Path = TEMPLATES) -> list[str]:
    """Action kinds of the definition whose "when it fires" the template does not give yet."""
    notes = read_template("clinical-decisions.md", templates).notes
    return [kind for kind in defn.actions if f"action:{kind}" not in notes]


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
        print(f"note: say when {kind} fires in docs/templates/clinical-decisions.md (an 'action:{kind}:' note)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
