"""What-if: a guideline definition with some rules changed (``--set RULE=VALUE``).

Any rule of the definition can be changed: a threshold or timing of ``rules`` (e.g.
``persistent_pain_nrs=6``), of the safety rules (``opioid_review_day=10``), or a schedule
(``radiograph_days=14,42``). The changed definition is built through pydantic like a seed, so its
own checks apply (outreach before escalation, the review before completion, ...). A name may carry
its block (``rules.``, ``safety.rules.`` or ``safety.``, ``schedules.``).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from pathway.guideline import PathwayDefinition


class WhatIfError(ValueError):
    """A change that names no rule, or a value the definition refuses; the message says which."""


Change = tuple[str, float | list[int]]  # (block.name, value)


def _where(defn: PathwayDefinition, name: str) -> tuple[str, str]:
    """The block (``rules``, ``safety.rules``, ``schedules``) and rule name a change refers to."""
    blocks = {"rules": dict(defn.rules), "schedules": dict(defn.schedules),
              "safety.rules": dict(defn.safety.rules) if defn.safety else {}}
    for prefix, block in (("safety.rules.", "safety.rules"), ("safety.", "safety.rules"), ("rules.", "rules"),
                          ("schedules.", "schedules")):
        if name.startswith(prefix):
            bare = name.removeprefix(prefix)
            if bare in blocks[block] and blocks[block][bare] is not None:
                return block, bare
            raise WhatIfError(f"unknown rule {name!r} in {block} of guideline {defn.version}")
    found = [block for block, rules in blocks.items() if rules.get(name) is not None]
    if not found:
        known = ", ".join(sorted(n for rules in blocks.values() for n, v in rules.items() if v is not None))
        raise WhatIfError(f"unknown rule {name!r} in guideline {defn.version}; rules are: {known}")
    return found[0], name


def parse_change(defn: PathwayDefinition, text: str) -> Change:
    """``RULE=VALUE`` as (block.rule, value): a number for a rule, comma-separated days for a schedule."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise WhatIfError(f"{text!r}: expected RULE=VALUE (e.g. persistent_pain_nrs=6)")
    block, rule = _where(defn, name)
    if block == "schedules":
        try:
            days = [int(part) for part in raw.split(",")]
        except ValueError:
            raise WhatIfError(f"{name}: {raw!r} is not a list of whole days (e.g. 14,42,84)") from None
        return f"{block}.{rule}", days
    try:
        value = float(raw)
    except ValueError:
        raise WhatIfError(f"{name}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise WhatIfError(f"{name}: {raw!r} is not a finite number")
    return f"{block}.{rule}", value


def label(changes: list[Change]) -> str:
    """The changes as ``rule=value, ...`` (for titles and the summary)."""
    return ", ".join(f"{path.rsplit('.', 1)[1]}={_text(value)}" for path, value in changes)


def _text(value: float | list[int]) -> str:
    return ",".join(str(d) for d in value) if isinstance(value, list) else f"{value:g}"


def apply(defn: PathwayDefinition, texts: list[str]) -> tuple[PathwayDefinition, list[Change]]:
    """The definition with these changes, validated as a seed is; raise :class:`WhatIfError`."""
    if not texts:
        return defn, []
    changes = [parse_change(defn, text) for text in texts]
    data: dict[str, Any] = defn.model_dump()
    for path, value in changes:
        *blocks, rule = path.split(".")
        target = data
        for block in blocks:
            target = target[block]
        if isinstance(value, list):
            target[rule]["days"] = value
        else:
            target[rule]["value"] = value
    version = f"{defn.version}+{label(changes).replace(', ', '+')}"
    data["version"] = version if len(version) <= 64 else f"{defn.version}+what-if"
    try:
        return PathwayDefinition.model_validate(data), changes
    except ValidationError as exc:
        reasons = "; ".join((f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
                            + e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise WhatIfError(f"{label(changes)}: the guideline refuses it: {reasons}") from None
