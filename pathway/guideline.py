"""The computable guideline: every threshold and timing, with the section it comes from.

The definition lives in ``seeds/`` as versioned JSON and is validated here. Changing a threshold
is an edit of that file, not of code. A patient keeps the definition it was enrolled with: the
workflow's input names it by version and digest (:mod:`pathway.releases`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pathway.contract import ACTION_KINDS, FRACTURE_LEVELS, ActionKind, FractureLevel, RedFlag

SEEDS_DIR = Path(os.environ.get("VCF_SEEDS_DIR", Path(__file__).resolve().parent.parent / "seeds"))
CURRENT_DEFINITION = "vcf_pathway_v1_2.json"
# Action kinds that a definition may lack because they came with a later version.
LATER_KINDS = {"request_clinician_review": "safety"}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EvidenceStatus = Literal["confirmed", "local_protocol", "verify"]


class _Sourced(_Frozen):
    """Where a value comes from: the guideline section, its references, whether unsourced."""

    section: str
    refs: list[str] = Field(default_factory=list)
    verify: bool = False
    note: str = ""
    local_protocol: bool = Field(False, description="A local choice where the guideline is silent.")

    @property
    def status(self) -> EvidenceStatus:
        """confirmed (a source gave it), local_protocol (a local choice), or verify (unsourced)."""
        if self.verify:
            return "verify"
        return "local_protocol" if self.local_protocol else "confirmed"

    def cite(self, *resting_on: _Sourced) -> str:
        """Guideline section and reference numbers, plus a (verify) mark where unsourced — this value,
        or one of the values ``resting_on`` that the cited step also rests on."""
        return _cite(self.section, self.refs, self.verify or any(rule.verify for rule in resting_on))


class Rule(_Sourced):
    """One threshold or timing, with where it comes from; its value within what its unit allows."""

    value: float
    unit: str

    @model_validator(mode="after")
    def _within_its_scale(self) -> Rule:
        for start, low, high in _SCALES:
            if self.unit.startswith(start):
                if not low <= self.value <= high:
                    raise ValueError(f"value: {self.value:g} is outside {low:g} to {high:g}, the range of {self.unit}")
                break
        return self


# What a rule's unit allows (the contract's ranges: NRS 0-10, T-score -6 to 4, kyphosis 0-90 degrees,
# height loss 0-100%, pathway days 0-730), by how the unit starts.
_SCALES: tuple[tuple[str, float, float], ...] = (
    ("NRS", 0, 10), ("T-score", -6, 4), ("degrees", 0, 90), ("% height loss", 0, 100), ("grade", 0, 3),
    ("fraction", 0, 10), ("day", 0, 730),
)


class Schedule(_Sourced):
    """Days after enrollment at which a step is due: after enrollment, within the pathway's days
    (1 to 730), each once and in order."""

    days: list[Annotated[int, Field(ge=1, le=730)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _in_order(self) -> Schedule:
        if any(a >= b for a, b in zip(self.days, self.days[1:], strict=False)):
            raise ValueError("days: each day once, in increasing order")
        return self


class Code(_Frozen):
    """A coding for an order (CPT, RxNorm, ICD-10-CM); ``code`` is None where unconfirmed."""

    system: str
    code: str | None
    display: str


class ActionSpec(_Frozen):
    """How an action kind is cited and ordered."""

    title: str
    section: str
    refs: list[str] = Field(default_factory=list)
    resource: Literal["MedicationRequest", "ServiceRequest", "CommunicationRequest", "Task"]
    codes: list[Code] = Field(default_factory=list)

    def cite(self) -> str:
        """Guideline section and reference numbers."""
        return _cite(self.section, self.refs, False)


class Rules(_Frozen):
    """The named thresholds (docs/clinical-decisions.md#rules)."""

    acute_phase_end_day: Rule
    review_day: Rule
    persistent_pain_nrs: Rule
    resolved_pain_nrs: Rule
    severe_pain_nrs: Rule
    calcitonin_max_fracture_age_days: Rule
    calcitonin_stop_day: Rule
    nerve_block_from_day: Rule
    nerve_block_until_day: Rule
    physical_therapy_from_day: Rule
    physical_therapy_pain_nrs: Rule
    genant_grade_1_pct: Rule
    genant_grade_2_pct: Rule
    genant_grade_3_pct: Rule
    kyphoplasty_min_genant_grade: Rule
    progression_relative_height_loss: Rule
    kyphosis_progression_deg: Rule
    flare_rise_nrs: Rule
    flare_baseline_max_nrs: Rule
    immobilization_max_days: Rule
    outreach_after_days: Rule
    escalate_after_days: Rule
    osteoporosis_t_score: Rule
    completion_day: Rule
    # Added in vcf-1.1; pathways enrolled on vcf-1.0 keep running without it.
    result_overdue_days: Rule | None = None


class Schedules(_Frozen):
    """The follow-up schedules."""

    radiograph_days: Schedule
    screening_days: Schedule


class SafetyRules(_Frozen):
    """The thresholds of the pre-go-live clinical safety review (vcf-1.2)."""

    review_evidence_window_days: Rule
    review_hold_until_day: Rule
    later_pain_apart_days: Rule
    opioid_review_day: Rule
    opioid_stop_by_day: Rule
    screening_skip_after_flare_days: Rule
    result_overdue_urgent_days: Rule


class Safety(_Frozen):
    """Safety rules that amend the defaults: current evidence for referrals, holds while
    pathology is unresolved, hand-overs, medication reviews, one task per need."""

    calcitonin_withheld_red_flags: list[RedFlag]
    rules: SafetyRules


class LevelOrder(_Frozen):
    """What an order images or treats for a set of fracture levels: region, title and codes."""

    levels: list[FractureLevel] = Field(min_length=1)
    region: str
    title: str
    codes: list[Code] = Field(min_length=1)


class LevelScope(_Sourced):
    """The fracture levels a step is meant for."""

    levels: list[FractureLevel] = Field(min_length=1)


class LevelAware(_Frozen):
    """Orders that name the region of the fractured level, and the nerve-block's scope (vcf-1.2)."""

    nerve_block_scope: LevelScope
    orders: dict[ActionKind, list[LevelOrder]]

    @model_validator(mode="after")
    def _every_level_once(self) -> LevelAware:
        for kind, rows in self.orders.items():
            levels = [level for row in rows for level in row.levels]
            if sorted(levels) != sorted(FRACTURE_LEVELS):
                raise ValueError(f"level_aware.orders.{kind}: must name every level from T1 to L5 exactly once")
        return self

    def order_for(self, kind: ActionKind, level: str) -> LevelOrder | None:
        """The region, title and codes of an order for one fracture level (None if not level-aware)."""
        return next((row for row in self.orders.get(kind, []) if level in row.levels), None)


class PathwayDefinition(_Frozen):
    """A versioned, validated pathway definition."""

    version: str = Field(min_length=1, max_length=64)
    title: str
    guideline_file: str
    references: dict[str, str]
    rules: Rules
    schedules: Schedules
    urgent_mri_red_flags: list[RedFlag]
    actions: dict[ActionKind, ActionSpec]
    # Added in vcf-1.2; pathways enrolled on earlier versions keep running without it.
    safety: Safety | None = None
    level_aware: LevelAware | None = None
    @model_validator(mode="after")
    def _consistent(self) -> PathwayDefinition:
        later = {kind for kind, block in LATER_KINDS.items() if getattr(self, block) is None}
        missing = sorted(set(ACTION_KINDS) - set(self.actions) - later)
        if missing:
            raise ValueError(f"actions: no entry for {', '.join(missing)}")
        r = self.rules
        if not r.genant_grade_1_pct.value < r.genant_grade_2_pct.value < r.genant_grade_3_pct.value:
            raise ValueError("rules: Genant grade boundaries must increase")
        if not r.outreach_after_days.value < r.escalate_after_days.value:
            raise ValueError("rules: outreach must come before escalation")
        if not 0 < r.review_day.value < r.completion_day.value:
            raise ValueError("rules: the review must come after enrollment and before completion")
        if not r.nerve_block_from_day.value <= r.nerve_block_until_day.value:
            raise ValueError("rules: the nerve-block window must open before it closes")
        for name, schedule in (("screening_days", self.schedules.screening_days),
                               ("radiograph_days", self.schedules.radiograph_days)):
            if max(schedule.days) > r.completion_day.value:
                raise ValueError(f"schedules.{name}: a day falls after completion")
        s = self.safety.rules if self.safety else None
        if s is not None and not s.opioid_review_day.value <= s.opioid_stop_by_day.value:
            raise ValueError("safety.rules: the opioid review must come by the stop day")
        return self

    def order_for(self, kind: ActionKind, level: str | None) -> tuple[str, list[Code]]:
        """The title and codes an order goes out with: the fractured level's region where the
        version is level-aware, the action kind's own otherwise."""
        row = self.level_aware.order_for(kind, level) if self.level_aware and level else None
        spec = self.actions[kind]
        return (row.title, row.codes) if row else (spec.title, spec.codes)

    def region(self, kind: ActionKind, level: str) -> str | None:
        """The region an imaging or augmentation order names for a level (None if not level-aware)."""
        row = self.level_aware.order_for(kind, level) if self.level_aware else None
        return row.region if row else None

    def cite(self, kind: ActionKind, basis: tuple[_Sourced, ...] = (), about: ActionKind | None = None) -> str:
        """The citation of an action kind; "(verify)" where a rule it rests on is unsourced; ``about``:
        the step it concerns, whose guideline section comes first (a clinician review's)."""
        verify = " — local default (verify)" if any(rule.verify for rule in basis) else ""
        cited = f"{self.actions[about].cite()}; {self.actions[kind].section}" if about else self.actions[kind].cite()
        return f"{cited}{verify} [guideline {self.version}]"


# Values computed once per definition (it is immutable), kept with the definition they came from so
# that its id is never reused while they are.
_DERIVED: dict[tuple[int, str], tuple[PathwayDefinition, Any]] = {}
T = TypeVar("T")


def derived(defn: PathwayDefinition, name: str, derive: Callable[[PathwayDefinition], T]) -> T:
    """``derive(defn)``, computed once per definition; read-only."""
    key = (id(defn), name)
    found = _DERIVED.get(key)
    if found is None:
        found = _DERIVED[key] = (defn, derive(defn))
    value: T = found[1]
    return value


def _cite(section: str, refs: list[str], verify: bool) -> str:
    text = f"Guideline: {section}"
    if refs:
        text += f" (ref. {', '.join(refs)})"
    if verify:
        text += " — local default (verify)"
    return text


def load_definition(path: str | Path | None = None) -> PathwayDefinition:
    """Load and validate a pathway definition (the current one by default)."""
    path = Path(path) if path else SEEDS_DIR / CURRENT_DEFINITION
    return PathwayDefinition.model_validate(json.loads(path.read_text(encoding="utf-8")))


def released_definitions() -> dict[str, PathwayDefinition]:
    """Every definition in ``seeds/``, by version (released versions stay there)."""
    found = (load_definition(path) for path in sorted(SEEDS_DIR.glob("vcf_pathway_*.json")))
    return {defn.version: defn for defn in found}
