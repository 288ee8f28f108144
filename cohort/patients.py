"""Synthetic patients drawn from a cohort model, and what they (and their care team) send in.

A patient is drawn once, from its own random stream (``Random(f"{seed}/{index}")``): enrollment,
natural history (pain, progression, a new fracture, spells in bed, a deficit), reporting and
drop-out, clinicians' decisions. Its *background* events are known in advance. Other events answer
what the pathway did — an imaging result some days after its order, a side effect of a drug, a
clinician confirming a nerve-block offer — and each of those draws from a stream of its own, named
by the patient and the action id, so the same patient answers the same order the same way under
any variant of the guideline.

Every event falls on a quarter of a day that is never a whole day: clear of the steps scheduled
for whole days (which run a second after) and of the rounding of action days to 3 decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from random import Random
from typing import Literal, cast

from cohort.model import Chance, CohortModel, Continuous, LogNormal, Normal, Uniform
from pathway.contract import (
    FRACTURE_LEVELS,
    ClinicianDecision,
    ClinicianEvent,
    DxaEvent,
    Enrollment,
    Event,
    FractureLevel,
    MobilityEvent,
    MriEvent,
    NeuroEvent,
    PainEvent,
    PulmonaryEvent,
    RadiographEvent,
    SideEffectEvent,
)

TimedEvent = tuple[float, Event]
Etiology = Literal["osteoporotic", "malignant", "infection", "indeterminate"]
PATHOLOGIC_RED_FLAGS = ("history_of_cancer", "fever_or_infection", "unexplained_weight_loss")
AUTHOR = "cohort-clinician"
# Drug orders whose side effects a patient may report: action kind -> (model field, drug, effect).
SIDE_EFFECTS = {
    "prescribe_first_line_analgesia": ("first_line_analgesia", "NSAID", "dyspepsia"),
    "prescribe_opioid_short_course": ("opioid", "opioid analgesic", "constipation"),
    "start_calcitonin": ("calcitonin", "calcitonin", "dizziness"),
    "prescribe_bisphosphonate": ("bisphosphonate", "ibandronate", "dyspepsia"),
}


def draw(rng: Random, d: Continuous) -> float:
    """One value of a continuous distribution (clipped to its bounds)."""
    if isinstance(d, Normal):
        return min(d.max, max(d.min, rng.gauss(d.mean, d.sd)))
    if isinstance(d, LogNormal):
        return min(d.max, max(d.min, d.median * math.exp(d.sigma * rng.gauss(0.0, 1.0))))
    assert isinstance(d, Uniform)
    return rng.uniform(d.low, d.high)


def happens(rng: Random, c: Chance) -> bool:
    """Whether something with this chance happens (always draws, so streams stay aligned)."""
    return rng.random() < c.p


def quarter(day: float) -> float:
    """The first quarter-day at or after ``day`` that is not a whole day."""
    q = math.ceil(day * 4 - 1e-9) / 4
    return q + 0.25 if q == int(q) else q


def patient_id(index: int) -> str:
    """The pseudonymous id of the ``index``-th synthetic patient."""
    return f"pt-{index:06d}"


@dataclass
class Patient:
    """One synthetic patient: enrollment, hidden course, and the events known in advance."""

    seed: int
    index: int
    model: CohortModel
    enrollment: Enrollment
    enrolled_on: int
    non_responder: bool
    first_mri: str
    true_etiology: str
    repeat_mri: bool
    dropout_day: float
    new_fracture_day: float | None
    new_fracture_level: FractureLevel | None
    progression: float
    settle_days: float
    kyphosis: float | None
    kyphosis_increase: float
    background: list[TimedEvent] = field(default_factory=list)
    pain: list[tuple[float, int]] = field(default_factory=list)

    # --- What the patient and the care team send in answer to the pathway -------------------

    def respond(self, action_id: str, kind: str, details: dict[str, object], now: float) -> list[TimedEvent]:
        """Events that answer an action taken at pathway time ``now`` (none for most)."""
        m = self.model
        if kind in SIDE_EFFECTS:
            name, drug, effect = SIDE_EFFECTS[kind]
            rng = self._rng(action_id)
            if happens(rng, getattr(m.side_effects, name)):
                day = quarter(now + draw(rng, m.side_effects.delay_days))
                if day < self.dropout_day:
                    return [(day, SideEffectEvent(drug=drug, effect=effect))]
            return []
        if kind == "offer_nerve_block":
            rng = self._rng(action_id)
            if happens(rng, m.clinician.confirm_nerve_block):
                return [(quarter(now + draw(rng, m.clinician.confirm_delay_days)),
                         _decision("confirm_nerve_block", "nerve-root block scheduled"))]
            return []
        if kind not in ("order_mri", "order_radiograph", "order_adjacent_fracture_screening", "order_dxa"):
            return []
        rng = self._rng(action_id)
        if happens(rng, m.imaging.not_resulted):
            return []
        if kind == "order_dxa":
            day = quarter(now + draw(rng, m.imaging.dxa_delay_days))
            result: list[TimedEvent] = [(day, DxaEvent(t_score=round(draw(rng, m.imaging.dxa_t_score), 1)))]
        elif kind == "order_mri" and action_id == "order_mri":
            urgent = details.get("priority") == "urgent"
            day = quarter(now + draw(rng, m.imaging.urgent_mri_delay_days if urgent else m.imaging.mri_delay_days))
            result = [(day, MriEvent(etiology=cast(Etiology, self.first_mri)))]
            if self.first_mri == "indeterminate" and self.repeat_mri:
                later = quarter(day + draw(rng, m.imaging.repeat_delay_days))
                result.append((later, MriEvent(etiology=cast(Etiology, self.true_etiology))))
        elif kind == "order_mri":  # a new fracture level: osteoporotic like the first (assumption)
            day = quarter(now + draw(rng, m.imaging.mri_delay_days))
            result = [(day, MriEvent(etiology="osteoporotic"))]
        else:
            day = quarter(now + draw(rng, m.imaging.radiograph_delay_days))
            result = [(day, self._radiograph(rng, day))]
        return [(d, e) for d, e in result if d < self.dropout_day]

    def _radiograph(self, rng: Random, day: float) -> RadiographEvent:
        m = self.model.progression
        done = min(1.0, day / self.settle_days)
        first = self.enrollment.height_loss_pct
        height = first * (1 + self.progression * done) + rng.gauss(0.0, m.measurement_sd_pct)
        kyphosis = None if self.kyphosis is None else round(min(90.0, self.kyphosis + self.kyphosis_increase * done), 1)
        new = self.new_fracture_level if self.new_fracture_day is not None and self.new_fracture_day <= day else None
        return RadiographEvent(height_loss_pct=round(min(100.0, max(0.0, height)), 1), kyphosis_deg=kyphosis,
                               new_fracture_level=new)

    def _rng(self, action_id: str) -> Random:
        return Random(f"{self.seed}/{self.index}/{action_id}")


def _decision(decision: ClinicianDecision, reason: str) -> ClinicianEvent:
    return ClinicianEvent(decision=decision, reason=reason, author=AUTHOR)


# Events are frozen and a pain report is its score alone: one per score, shared by every patient.
PAIN_REPORTS = tuple(PainEvent(nrs=nrs) for nrs in range(11))


def draw_patient(model: CohortModel, seed: int, index: int) -> Patient:
    """The ``index``-th patient of the cohort drawn with ``seed`` (the same every time)."""
    rng = Random(f"{seed}/{index}")
    e = model.enrollment
    levels = list(e.fracture_level.weights)
    level = rng.choices(levels, weights=[e.fracture_level.weights[lv] for lv in levels])[0]
    scores = list(e.pain_nrs.weights)
    nrs = int(rng.choices(scores, weights=[e.pain_nrs.weights[s] for s in scores])[0])
    height = round(draw(rng, e.height_loss_pct), 1)
    onset = int(draw(rng, e.onset_days))
    flags = [flag for flag, chance in e.red_flags.items() if happens(rng, chance)]
    enrollment = Enrollment(id=patient_id(index), fracture_level=level, height_loss_pct=height, pain_nrs=nrs,
                            onset_days_before_enrollment=onset, red_flags=flags)
    enrolled_on = int(draw(rng, model.enrollment_spread_days))

    img = model.imaging
    mix = img.mri_etiology_with_red_flag if set(flags) & set(PATHOLOGIC_RED_FLAGS) else img.mri_etiology
    weights = mix.weights()
    first_mri = rng.choices(list(weights), weights=list(weights.values()))[0]
    settled = {k: v for k, v in weights.items() if k != "indeterminate"}
    true_etiology = rng.choices(list(settled), weights=list(settled.values()))[0] if sum(settled.values()) else \
        "osteoporotic"
    if first_mri != "indeterminate":
        true_etiology = first_mri
    repeat_mri = happens(rng, img.repeat_after_indeterminate)

    horizon = model.horizon_days
    dropout_day = rng.uniform(0, horizon) if happens(rng, model.reporting.dropout_within_year) else math.inf

    p = model.progression
    progression = draw(rng, p.relative_increase) if happens(rng, p.further_height_loss) else 0.0
    settle_days = 7 * draw(rng, p.weeks_to_settle)
    kyphosis = round(draw(rng, p.kyphosis_deg), 1) if happens(rng, p.kyphosis_reported) else None
    kyphosis_increase = draw(rng, p.kyphosis_increase_deg) if progression else 0.0

    nf = model.new_fracture
    new_day: float | None = None
    new_level: FractureLevel | None = None
    rise, settle = 0.0, 1.0
    if happens(rng, nf.within_year):
        new_day = quarter(rng.uniform(0, horizon))
        distance = max(1, round(draw(rng, nf.level_distance)))
        at = FRACTURE_LEVELS.index(level)
        step = distance if rng.random() < 0.5 else -distance
        if not 0 <= at + step < len(FRACTURE_LEVELS):
            step = -step
        new_level = cast(FractureLevel, FRACTURE_LEVELS[min(len(FRACTURE_LEVELS) - 1, max(0, at + step))])
        rise, settle = draw(rng, nf.pain_rise_nrs), draw(rng, nf.pain_settle_days)

    non_responder = happens(rng, model.pain.non_responder)
    trajectory = model.pain.non_responder_trajectory if non_responder else model.pain.responder
    floor = draw(rng, trajectory.floor_nrs)
    tau = draw(rng, trajectory.time_constant_days)

    patient = Patient(seed=seed, index=index, model=model, enrollment=enrollment, enrolled_on=enrolled_on,
                      non_responder=non_responder, first_mri=first_mri, true_etiology=true_etiology,
                      repeat_mri=repeat_mri, dropout_day=dropout_day, new_fracture_day=new_day,
                      new_fracture_level=new_level, progression=progression, settle_days=settle_days,
                      kyphosis=kyphosis, kyphosis_increase=kyphosis_increase)
    events: list[TimedEvent] = []

    # Weekly pain reports, on a quarter-day around each prompt.
    r = model.reporting
    noise = model.pain.report_noise_sd
    for k in range(1, horizon // r.interval_days + 1):
        sent = happens(rng, r.adherence)
        day = quarter(r.interval_days * k + rng.choice((-1, 0, 0, 1)) + rng.choice((0.25, 0.5, 0.75)))
        jitter = rng.gauss(0.0, noise)
        if not sent or day > horizon or day >= dropout_day:
            continue
        level_now = floor + (nrs - floor) * math.exp(-day / tau)
        if new_day is not None and day >= new_day:
            level_now += rise * math.exp(-(day - new_day) / settle)
        score = max(0, min(10, round(level_now + jitter)))
        events.append((day, PAIN_REPORTS[score]))
        patient.pain.append((day, score))

    def spell(chance: Chance, start: Continuous, duration: Continuous) -> tuple[float, float] | None:
        if not happens(rng, chance):
            return None
        begin = quarter(draw(rng, start))
        return begin, quarter(begin + draw(rng, duration))

    bed = spell(model.bed_bound.chance, model.bed_bound.start_day, model.bed_bound.duration_days)
    if bed:
        events += [(bed[0], MobilityEvent(bed_bound=True)), (bed[1], MobilityEvent(bed_bound=False))]
    neuro = spell(model.neuro.chance, model.neuro.start_day, model.neuro.duration_days)
    resolves = happens(rng, model.neuro.resolves)
    if neuro:
        events.append((neuro[0], NeuroEvent(deficit=True)))
        if resolves:
            events.append((neuro[1], NeuroEvent(deficit=False)))
    lungs = spell(model.pulmonary.chance, model.pulmonary.start_day, model.pulmonary.duration_days)
    if lungs:
        events += [(lungs[0], PulmonaryEvent(dysfunction=True)), (lungs[1], PulmonaryEvent(dysfunction=False))]
    # Beyond the patient's drop-out, nothing the patient reports or is examined for arrives.
    events = [(d, ev) for d, ev in events if d < dropout_day]

    c = model.clinician
    pause = spell(c.pause.chance, c.pause.start_day, c.pause.duration_days)
    if pause:
        events += [(pause[0], _decision("pause", "hospital admission")),
                   (pause[1], _decision("resume", "discharged home"))]
    if happens(rng, c.decline_augmentation):
        events.append((quarter(draw(rng, c.decline_day)), _decision("decline_augmentation",
                                                                    "patient prefers conservative care")))
    if happens(rng, c.withdraw):
        events.append((quarter(draw(rng, c.withdraw_day)), _decision("withdraw", "care moved elsewhere")))
    patient.background = sorted(((d, ev) for d, ev in events if d <= horizon), key=lambda pair: pair[0])
    return patient
