"""``vcf guideline show``: the pathway of a released guideline version, read from ``seeds/``.

No API involved. A readable table (step, when, condition, order, citation) walked from the
generated PlanDefinition, so what is printed is what is published; ``--fhir`` prints that
PlanDefinition as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from typing import Any

from pathway.guideline import PathwayDefinition, load_definition, released_definitions
from pathway.plan_definition import Variant, canonical, plan_definition, variants
from pathway.plan_steps import level_span

EXIT_OK, EXIT_INVALID = 0, 2
HEADERS = ["step", "when", "condition", "order", "citation"]
_SYSTEM_LABELS = {"cpt": "CPT", "rxnorm": "RxNorm", "icd-10-cm": "ICD-10-CM", "loinc": "LOINC", "snomed": "SNOMED CT"}


def register(sub: Any) -> None:
    """Add ``guideline show`` to the ``vcf`` subcommands."""
    guideline = sub.add_parser("guideline", help="the guideline's pathway, read locally from seeds/ (no API)",
                               description="The guideline's pathway, read locally from seeds/ (no API).")
    commands = guideline.add_subparsers(dest="guideline_command", required=True)
    show = commands.add_parser("show", help="the pathway as a table (step, when, condition, order, citation)",
                               description="The pathway of the current or a named released guideline version: a "
                                           "table, or the FHIR R4 PlanDefinition with --fhir. Exit 2: unknown version.")
    show.add_argument("--version", dest="guideline_version", metavar="V",
                      help="a released guideline version, e.g. vcf-1.1 (default: the current one)")
    show.add_argument("--fhir", action="store_true", help="print the PlanDefinition JSON instead of the table")
    show.set_defaults(func=show_command)


def show_command(args: argparse.Namespace) -> int:
    """Print the table or the PlanDefinition; exit 2 naming an unknown version."""
    released = released_definitions()
    current = load_definition().version
    version = args.guideline_version or current
    defn = released.get(version)
    if defn is None:
        print(f"error: unknown guideline version {version!r}; released: {', '.join(released)}", file=sys.stderr)
        return EXIT_INVALID
    plan = plan_definition(defn, current=version == current)
    if args.fhir:
        print(json.dumps(plan, indent=2, ensure_ascii=False))
        return EXIT_OK
    state = "current" if version == current else "retired: patients enrolled on it still run it"
    print(f"{defn.title}\nguideline {version} ({state}); PlanDefinition {canonical(defn)}\n")
    width = max(110, min(shutil.get_terminal_size((160, 24)).columns, 220))
    print(render(rows(defn, plan), width))
    return EXIT_OK


# --- Rows -----------------------------------------------------------------------------------

def rows(defn: PathwayDefinition, plan: dict[str, Any]) -> list[list[str]]:
    """One row per action and sub-action of the PlanDefinition (a choice of region folds into
    its parent's order cell)."""
    known = {f"{v.url()}|{defn.version}": v for kind in defn.actions for v in variants(defn, kind)}
    out: list[list[str]] = []

    def walk(action: dict[str, Any], depth: int) -> None:
        children = action.get("action", [])
        regional = _regional(action, known)
        code = (action.get("code") or [{}])[0].get("coding", [{}])[0].get("code")
        step = ("  " * depth) + (code if depth == 0 and code else action.get("title", action["id"]))
        conditions = [c["expression"]["expression"] for c in action.get("condition", [])]
        if len(conditions) > 1:
            conditions[1:] = [f"Stop: {text}" for text in conditions[1:]]
        orders = [_order(known.get(c["definitionCanonical"]), regional)
                  for c in (children if regional else [action]) if "definitionCanonical" in c]
        citation = (action.get("documentation") or [{}])[0].get("citation", "")
        out.append([step, _when(action, depth), " ".join(conditions), "; ".join(orders), _short(citation)])
        for child in [] if regional else children:
            walk(child, depth + 1)

    for action in plan["action"]:
        walk(action, 0)
    return out


def _regional(action: dict[str, Any], known: dict[str, Variant]) -> bool:
    """Whether the action's sub-actions are its order's regions, one per set of fracture levels."""
    children = action.get("action", [])
    return bool(children) and all(getattr(known.get(c.get("definitionCanonical", "")), "levels", None)
                                  for c in children)


def _order(v: Variant | None, regional: bool) -> str:
    if v is None:
        return "?"
    codes = ", ".join(f"{_label(c.system)} {c.code}" for c in v.codes if c.code)
    text = v.title + (f" ({codes})" if codes else "")
    return f"{level_span(v.levels)}: {text}" if regional and v.levels else text


def _label(system: str) -> str:
    return next((label for key, label in _SYSTEM_LABELS.items() if key in system), system)


def _days(quantity: dict[str, Any]) -> str:
    return f"{quantity['value']:g}"


def _when(action: dict[str, Any], depth: int = 0) -> str:
    """The action's timing and triggers in words; a group's gathered from its sub-actions (the
    regions of an order have none)."""
    parts = []
    if "timingDuration" in action:
        parts.append(f"day {_days(action['timingDuration'])}")
    elif "timingRange" in action:
        low, high = action["timingRange"]["low"], action["timingRange"].get("high")
        parts.append(f"days {_days(low)}–{_days(high)}" if high else f"from day {_days(low)}")
    if action.get("trigger"):
        parts.append("on " + ", ".join(t["name"] for t in action["trigger"]))
    children = action.get("action", [])
    if not parts and children:
        days = [_days(c["timingDuration"]) for c in children if "timingDuration" in c]
        ranges = [_when({"timingRange": c["timingRange"]}) for c in children if "timingRange" in c]
        timed = ([f"day{'s' if len(days) > 1 else ''} {', '.join(days)}"] if days else []) + ranges
        parts += [", ".join(timed)] if timed else []
        parts += ["on events"] if any(c.get("trigger") for c in children) else []
    return "; ".join(parts) or ("any day (clock)" if depth == 0 else "")


def _short(citation: str) -> str:
    """A citation without the repeated 'Guideline: ' and version (the header names the version)."""
    return citation.removeprefix("Guideline: ").split(" [guideline ")[0]


def render(table: list[list[str]], width: int) -> str:
    """A text table whose long cells wrap within ``width`` columns."""
    fixed = {0: 34, 1: 16, 3: 36, 4: 32}
    rest = max(24, width - sum(fixed.values()) - 2 * (len(HEADERS) - 1))
    sizes = [fixed.get(i, rest) for i in range(len(HEADERS))]
    lines = []
    for row in [HEADERS, ["-" * s for s in sizes], *table]:
        # The step keeps its indent (one line); the other cells wrap.
        cells = [textwrap.wrap(cell, s, break_on_hyphens=False) or [""] if i else [cell[:s]]
                 for i, (cell, s) in enumerate(zip(row, sizes, strict=True))]
        for n in range(max(map(len, cells))):
            line = "  ".join((c[n] if n < len(c) else "").ljust(s) for c, s in zip(cells, sizes, strict=True))
            lines.append(line.rstrip())
    return "\n".join(lines)
