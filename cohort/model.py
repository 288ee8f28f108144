"""The cohort model: who enrolls and what happens to them, as data (``seeds/cohorts/*.json``).

Every distribution names where it comes from (``source``): a published figure, or the words
"Assumption:" and why. The model is validated here; :mod:`cohort.patients` draws from it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pathway.contract import FRACTURE_LEVELS, FractureLevel, RedFlag

Source = Annotated[str, Field(min_length=12, max_length=600,
                              description="Where the figure comes from, or 'Assumption: ...' and why.")]
Probability = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chance(_Strict):
    """A probability, with its source."""

    p: Probability
    source: Source


class Normal(_Strict):
    """A normal distribution, clipped to ``[min, max]``."""

    dist: Literal["normal"] = "normal"
    mean: float
    sd: Annotated[float, Field(ge=0)]
    min: float
    max: float
    source: Source

    @model_validator(mode="after")
    def _ordered(self) -> Normal:
        if not self.min <= self.mean <= self.max:
            raise ValueError("needs min <= mean <= max")
        return self


class LogNormal(_Strict):
    """A log-normal distribution by its median and the sd of its log, clipped to ``[min, max]``."""

    dist: Literal["lognormal"] = "lognormal"
    median: Annotated[float, Field(gt=0)]
    sigma: Annotated[float, Field(ge=0)]
    min: Annotated[float, Field(ge=0)] = 0.0
    max: float
    source: Source

    @model_validator(mode="after")
    def _ordered(self) -> LogNormal:
        if not self.min <= self.median <= self.max:
            raise ValueError("needs min <= median <= max")
        return self


class Uniform(_Strict):
    """A uniform distribution on ``[low, high]``."""

    dist: Literal["uniform"] = "uniform"
    low: float
    high: float
    source: Source

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.low > self.high:
            raise ValueError("needs low <= high")
        return self


Continuous = Annotated[Normal | LogNormal | Uniform, Field(discriminator="dist")]


def _within(low: float, high: float, what: str) -> AfterValidator:
    """A check that a distribution's values stay within what the contract accepts (``what``)."""
    def check(d: Normal) -> Normal:
        if d.min < low or d.max > high:
            raise ValueError(f"min and max must lie within {low:g} to {high:g} ({what})")
        return d
    return AfterValidator(check)


# Distributions whose values become contract fields: clipped within the contract's ranges.
HeightLossPct = Annotated[Normal, _within(0, 100, "height loss, percent")]
PainFloorNrs = Annotated[Normal, _within(0, 10, "pain NRS")]
TScore = Annotated[Normal, _within(-6, 4, "DXA T-score")]
KyphosisDeg = Annotated[Normal, _within(0, 90, "kyphosis, degrees")]


def _weights_ok(weights: dict[str, float]) -> dict[str, float]:
    if any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError("weights must be finite and >= 0")
    if sum(weights.values()) <= 0:
        raise ValueError("at least one weight must be > 0")
    return weights


class LevelMix(_Strict):
    """Fracture levels by relative weight (levels left out never occur)."""

    weights: dict[FractureLevel, float]
    source: Source

    @field_validator("weights")
    @classmethod
    def _check(cls, weights: dict[str, float]) -> dict[str, float]:
        return _weights_ok(weights)


class PainMix(_Strict):
    """Enrollment pain (NRS 0-10) by relative weight."""

    weights: dict[Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"], float]
    source: Source

    @field_validator("weights")
    @classmethod
    def _check(cls, weights: dict[str, float]) -> dict[str, float]:
        return _weights_ok(weights)


class EtiologyMix(_Strict):
    """What the MRI shows, by relative weight."""

    osteoporotic: Annotated[float, Field(ge=0)]
    malignant: Annotated[float, Field(ge=0)]
    infection: Annotated[float, Field(ge=0)]
    indeterminate: Annotated[float, Field(ge=0)]
    source: Source

    @model_validator(mode="after")
    def _some(self) -> EtiologyMix:
        _weights_ok(self.weights())
        return self

    def weights(self) -> dict[str, float]:
        return {"osteoporotic": self.osteoporotic, "malignant": self.malignant, "infection": self.infection,
                "indeterminate": self.indeterminate}


class Enrollment(_Strict):
    """The patient at enrollment."""

    fracture_level: LevelMix
    height_loss_pct: HeightLossPct
    pain_nrs: PainMix
    onset_days: LogNormal = Field(description="Fracture age at enrollment (days since onset).")
    red_flags: dict[RedFlag, Chance]


class Trajectory(_Strict):
    """Pain over time: from the enrollment score towards a floor, with a time constant."""

    floor_nrs: PainFloorNrs
    time_constant_days: LogNormal


class Pain(_Strict):
    """The natural history of pain (the pathway's actions do not change it in this model)."""

    non_responder: Chance = Field(description="Share still in pain (no sufficient relief) through the year.")
    responder: Trajectory
    non_responder_trajectory: Trajectory
    report_noise_sd: Annotated[float, Field(ge=0, le=5)]
    noise_source: Source


class Reporting(_Strict):
    """Pain reports sent by the patient (weekly prompts), adherence and drop-out."""

    interval_days: Annotated[int, Field(ge=1, le=60)]
    interval_source: Source
    adherence: Chance = Field(description="Chance a prompted report is sent.")
    dropout_within_year: Chance = Field(description="Chance of leaving follow-up within a year (constant hazard).")


class Imaging(_Strict):
    """Imaging and DXA results: how long they take and how often none comes."""

    mri_etiology: EtiologyMix
    mri_etiology_with_red_flag: EtiologyMix = Field(description="With a red flag for a pathologic fracture.")
    repeat_after_indeterminate: Chance = Field(description="A clinician-ordered repeat that resolves the etiology.")
    repeat_delay_days: LogNormal
    mri_delay_days: LogNormal
    urgent_mri_delay_days: LogNormal
    radiograph_delay_days: LogNormal
    dxa_delay_days: LogNormal
    not_resulted: Chance = Field(description="Chance an order gets no result at all (not attended).")
    dxa_t_score: TScore


class Progression(_Strict):
    """Radiographic progression of the fractured vertebra."""

    further_height_loss: Chance
    relative_increase: Uniform = Field(description="Further height loss as a fraction of the enrollment value.")
    weeks_to_settle: Uniform
    measurement_sd_pct: Annotated[float, Field(ge=0, le=10)]
    measurement_source: Source
    kyphosis_reported: Chance
    kyphosis_deg: KyphosisDeg
    kyphosis_increase_deg: Uniform


class NewFracture(_Strict):
    """A new vertebral fracture during the year."""

    within_year: Chance
    level_distance: Uniform = Field(description="Levels away from the enrolled one (rounded, at least 1).")
    pain_rise_nrs: Uniform
    pain_settle_days: LogNormal


class Spell(_Strict):
    """Something that starts on some day and lasts a while."""

    chance: Chance
    start_day: Uniform
    duration_days: LogNormal


class Neuro(_Strict):
    """A neurological deficit after enrollment, and whether it resolves."""

    chance: Chance
    start_day: Uniform
    resolves: Chance
    duration_days: LogNormal


class SideEffects(_Strict):
    """Side effects per drug order, reported some days after the order."""

    first_line_analgesia: Chance
    opioid: Chance
    calcitonin: Chance
    bisphosphonate: Chance
    delay_days: Uniform


class Clinician(_Strict):
    """Clinicians' decisions."""

    pause: Spell
    confirm_nerve_block: Chance
    confirm_delay_days: Uniform
    decline_augmentation: Chance
    decline_day: Uniform
    withdraw: Chance
    withdraw_day: Uniform


class CohortModel(_Strict):
    """A synthetic cohort: the distributions patients are drawn from."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str
    horizon_days: Annotated[int, Field(ge=1, le=730)]
    horizon_source: Source
    enrollment_spread_days: Uniform = Field(description="Calendar day of enrollment (for demand by calendar week).")
    enrollment: Enrollment
    pain: Pain
    reporting: Reporting
    imaging: Imaging
    progression: Progression
    new_fracture: NewFracture
    bed_bound: Spell
    neuro: Neuro
    pulmonary: Spell
    side_effects: SideEffects
    clinician: Clinician

    @model_validator(mode="after")
    def _consistent(self) -> CohortModel:
        if not set(self.enrollment.fracture_level.weights) <= set(FRACTURE_LEVELS):
            raise ValueError("enrollment.fracture_level: unknown level")
        return self


class CohortModelError(ValueError):
    """A cohort model that breaks its schema; ``errors`` name each field and reason."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def describe(exc: ValidationError) -> list[str]:
    """A pydantic error as ``field: reason`` lines (the dotted path into the model file)."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "model"
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "value_error":
            message = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            message = err["msg"]
        lines.append(f"{field}: {message}")
    return lines


def parse_model(raw: object) -> CohortModel:
    """Validate a cohort model; raise :class:`CohortModelError` naming each field."""
    try:
        return CohortModel.model_validate(raw)
    except ValidationError as exc:
        raise CohortModelError(describe(exc)) from None


def load_model(path: str | Path) -> CohortModel:
    """Read and validate a cohort model file."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CohortModelError([f"{path}: {exc}"]) from None
    return parse_model(raw)


def sources(model: CohortModel) -> dict[str, str]:
    """Every ``source`` in the model by its dotted path (for the README and the summary)."""
    found: dict[str, str] = {}

    def walk(value: object, path: str) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                child = getattr(value, name)
                if name in ("source", "noise_source") and isinstance(child, str):
                    found[path or name] = child
                elif name.endswith("_source") and isinstance(child, str):  # a plain figure's (interval_days, ...)
                    figure = name.removesuffix("_source")
                    found[f"{path}.{figure}" if path else figure] = child
                else:
                    walk(child, f"{path}.{name}" if path else name)
        elif isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{path}.{key}")

    walk(model, "")
    return found


__all__ = ["CohortModel", "CohortModelError", "load_model", "parse_model", "sources"]
