"""The pathway's steps in words: when each action kind fires, on what condition, after what.

Pure: reads a :class:`~pathway.guideline.PathwayDefinition` and returns :class:`Step` trees that
:mod:`pathway.plan_definition` writes out as PlanDefinition actions. Every number in a text is
read from the definition (rules, safety rules, schedules), and each step remembers the rules it
quoted, so a changed seed changes the published document. The words follow
``docs/clinical-decisions.md``; the decisions themselves stay in :mod:`pathway.decisions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from pathway.contract import FRACTURE_LEVELS, ActionKind, ReviewReason
from pathway.guideline import LevelScope, PathwayDefinition, Rule, Schedule
from pathway.review import REVIEW

REVIEW_REASONS: tuple[str, ...] = get_args(ReviewReason)
# Suggested procedures of an augmentation referral (details.suggested_procedure).
KYPHOPLASTY, VERTEBROPLASTY = "balloon_kyphoplasty", "vertebroplasty"


@dataclass(frozen=True)
class Relation:
    """An ordering constraint: this step comes ``relationship`` the step ``action_id``."""

    action_id: str
    relationship: str  # R4 action-relationship-type: after, after-start, concurrent-with-start...
    offset_days: float | None = None


@dataclass
class Step:
    """One action of the PlanDefinition, in plain data.

    A step with ``kind`` and no children is a leaf: it points at the ActivityDefinition(s) of that
    action kind (of ``procedure`` where the kind has several). ``code`` is ``("kind", kind)`` or
    ``("reason", reason)``; the timing is a day offset (``day``), a window (``window``, open-ended
    when the upper bound is None) and/or the contract events that trigger it (``triggers``).
    """

    id: str
    title: str
    description: str
    applies: str
    code: tuple[str, str] | None = None
    kind: ActionKind | None = None
    procedure: str | None = None
    stop: str = ""
    day: float | None = None
    window: tuple[float, float | None] | None = None
    triggers: tuple[str, ...] = ()
    after: list[Relation] = field(default_factory=list)
    children: list[Step] = field(default_factory=list)
    choose_one: bool = False  # exactly one child applies
    rules: dict[str, Rule | Schedule | LevelScope] = field(default_factory=dict)
    citation: str = ""


class _Reader:
    """Reads thresholds off a definition, as text, and remembers which ones were read."""

    def __init__(self, defn: PathwayDefinition):
        self.defn = defn
        self.used: dict[str, Rule | Schedule | LevelScope] = {}
        self.aside: set[str] = set()  # quoted, but not what the step rests on (not cited)

    def rule(self, name: str) -> Rule:
        found: Rule | None = getattr(self.defn.rules, name, None)
        if found is None and self.defn.safety is not None:
            found = getattr(self.defn.safety.rules, name, None)
        if found is None:
            raise KeyError(f"{self.defn.version} has no rule {name}")
        self.used[name] = found
        return found

    def __call__(self, name: str) -> str:
        """The rule's value as text (``5``, ``-2.5``)."""
        return f"{self.rule(name).value:g}"

    def days(self, name: str) -> list[int]:
        """A schedule's days."""
        schedule: Schedule = getattr(self.defn.schedules, name)
        self.used[name] = schedule
        return schedule.days

    def step(self, action_kind: ActionKind, **fields: Any) -> Step:
        """A step for an action kind, citing the rules read so far; ``kind=None`` for a group."""
        basis = tuple(rule for name, rule in self.used.items()
                      if isinstance(rule, (Rule, Schedule)) and name not in self.aside)
        fields.setdefault("kind", action_kind)
        return Step(id=action_kind, title=self.defn.actions[action_kind].title, code=("kind", action_kind),
                    rules=dict(self.used), citation=self.defn.cite(action_kind, basis), **fields)


def level_span(levels: Sequence[str]) -> str:
    """Fracture levels as runs in spine order, e.g. ``T1–T10`` or ``T11–L1``."""
    order = [level for level in FRACTURE_LEVELS if level in levels]
    runs: list[list[str]] = []
    for level in order:
        if runs and FRACTURE_LEVELS.index(level) == FRACTURE_LEVELS.index(runs[-1][-1]) + 1:
            runs[-1].append(level)
        else:
            runs.append([level])
    return ", ".join(run[0] if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs)


def _overdue(r: _Reader, urgent: bool = False) -> str:
    """The closed-loop limit on an order's result (none before vcf-1.1)."""
    if r.defn.rules.result_overdue_days is None:
        return ""
    r.aside |= {"result_overdue_days", "result_overdue_urgent_days"}  # the workflow's closed loop, not cited
    text = f" A result outstanding more than {r('result_overdue_days')} days escalates to the care team"
    if urgent and r.defn.safety is not None:
        text += f" ({r('result_overdue_urgent_days')} days for an urgent order)"
    return text + "."


# --- Enrollment (day 0) ---------------------------------------------------------------------

def _at_enrollment(kind: ActionKind, description: str) -> Callable[[PathwayDefinition], Step]:
    def build(defn: PathwayDefinition) -> Step:
        return _Reader(defn).step(kind, description=description, applies="Every enrolled patient.", day=0)
    return build


def _opioid(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    applies = f"Pain NRS >= {r('severe_pain_nrs')} at enrollment (severe pain)."
    course = (f"Class-level order: the clinician chooses agent and dose; reviewed on day {r('opioid_review_day')} "
              f"and stopped by day {r('opioid_stop_by_day')}; with a bowel regimen." if defn.safety
              else "A short, limited course for severe pain.")
    return r.step("prescribe_opioid_short_course", description=course, applies=applies, day=0)


def _start_calcitonin(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    applies = f"The fracture is at most {r('calcitonin_max_fracture_age_days')} days old at enrollment"
    if defn.safety and defn.safety.calcitonin_withheld_red_flags:
        applies += (f", and no red flag {' or '.join(defn.safety.calcitonin_withheld_red_flags)} "
                    "(the FDA label warns of a malignancy signal)")
    return r.step("start_calcitonin", applies=applies + "; otherwise a note says why it was not started.", day=0,
                  description=f"Acute pain relief; short-term use only (EMA restriction), hard stop on day "
                              f"{r('calcitonin_stop_day')}. May cause mild dizziness.")


def _stop_calcitonin(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    stop = r("calcitonin_stop_day")
    return r.step("stop_calcitonin", day=float(stop), after=[Relation("start_calcitonin", "after-start", float(stop))],
                  applies=f"Calcitonin was started: stopped on day {stop} when the course is complete, or at once "
                          "when the pathway exits on a pathologic fracture"
                          + (" (a withdrawal hands the course over to the care team, with its stop day)."
                             if defn.safety else " or the patient is withdrawn."),
                  description="A stop order: calcitonin is for short-term use only.")


def _dxa(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    return r.step("order_dxa", applies="Every enrolled patient.", day=0,
                  description=f"Bone density evaluation. The result is read: T-score <= {r('osteoporosis_t_score')} "
                              "confirms osteoporosis (treatment is already indicated by the fragility fracture)."
                              + _overdue(r))


def _mri(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    flags = " or ".join(defn.urgent_mri_red_flags)
    held = ("PT and any augmentation referral wait for a result saying osteoporotic" if defn.safety
            else "any augmentation referral waits for a result saying osteoporotic when a red flag was present")
    enrollment = Step(id="order_mri-enrollment", title="MRI at enrollment", day=0, kind="order_mri",
                      description="Rule out a pathologic fracture.",
                      applies=f"Every enrolled patient; urgent with a red flag ({flags}), otherwise routine.")
    new_level = Step(id="order_mri-new-level", title="MRI of a new fracture level", kind="order_mri",
                     triggers=("radiograph",), after=[Relation("order_radiograph", "after-start")],
                     description="Characterise the new fracture; the order images the new level's region.",
                     applies="A radiograph names a fracture level other than the enrolled one; routine.")
    return r.step("order_mri", kind=None, children=[enrollment, new_level],
                  applies="At enrollment; and for a new fracture level on a radiograph.",
                  description=f"MRI tells an osteoporotic from a pathologic fracture (malignancy, infection); {held}."
                              + _overdue(r, urgent=True))


# --- Schedule -------------------------------------------------------------------------------

def _radiographs(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    days = r.days("radiograph_days")
    together = " Radiographs that fall due together after a pause go out as one order." if defn.safety else ""
    children = [Step(id=f"order_radiograph-day-{d}", title=f"Week {d // 7:g} radiograph", day=d,
                     kind="order_radiograph",
                     applies=f"Day {d}, unless the pathway is paused (then on resume).",
                     description="Scheduled follow-up radiograph.") for d in days]
    return r.step("order_radiograph", kind=None, children=children,
                  applies=f"Every patient on the pathway: days {', '.join(map(str, days))}.",
                  description="Fracture healing, vertebral height, progressive deformity." + together + _overdue(r))


def _screening(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    days = r.days("screening_days")
    skip = (f" Skipped with a note when a flare-triggered screening was ordered within "
            f"{r('screening_skip_after_flare_days')} days before." if defn.safety else "")
    children = [Step(id=f"order_adjacent_fracture_screening-day-{d}", title=f"Screening at day {d}", day=d,
                     kind="order_adjacent_fracture_screening", description="Scheduled screening.",
                     applies=f"Day {d} (about {round(d / 30.4)} months), unless the pathway is paused.{skip}")
                for d in days]
    children.append(Step(
        id="order_adjacent_fracture_screening-flare", title="Screening on a pain flare", triggers=("pain",),
        kind="order_adjacent_fracture_screening", description="Screening at once on a pain flare.",
        applies=f"A pain report >= {r('flare_rise_nrs')} points above the lowest score since enrollment, once that "
                f"lowest was <= {r('flare_baseline_max_nrs')}."))
    return r.step("order_adjacent_fracture_screening", kind=None, children=children,
                  applies=f"Days {', '.join(map(str, days))}, and on a pain flare.",
                  description="The risk of another vertebral fracture is raised after one." + _overdue(r))


# --- Responses to what is observed ----------------------------------------------------------

def _nerve_block(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    start, until = r.rule("nerve_block_from_day").value, r.rule("nerve_block_until_day").value
    applies = (f"A pain report of NRS >= {r('severe_pain_nrs')} from day {start:g} to day {until:g} (severe pain "
               "persisting despite first-line analgesia), once")
    if defn.level_aware:
        scope = defn.level_aware.nerve_block_scope
        r.used["nerve_block_scope"] = scope
        applies += (f"; for a fracture at {level_span(scope.levels)} only, elsewhere a note says the guideline's "
                    "evidence does not cover the level")
    stop = f"Not confirmed by a clinician by day {until:g}: the offer expires." if defn.safety else ""
    return r.step("offer_nerve_block", applies=applies + ".", stop=stop, window=(start, until), triggers=("pain",),
                  after=[Relation("prescribe_first_line_analgesia", "after-start", start)],
                  description="An offer that needs clinician confirmation, never an automatic order; short-term "
                              "relief (up to about 2 weeks).")


def _physical_therapy(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    start = r.rule("physical_therapy_from_day").value
    applies = (f"The first pain report from day {start:g} on with NRS <= {r('physical_therapy_pain_nrs')} "
               "(acute pain has subsided)")
    if defn.safety:
        applies += ("; and an MRI result saying osteoporotic on file and no open neurological deficit "
                    "(held with a note until then)")
    return r.step("refer_physical_therapy", applies=applies + ".", window=(start, None), triggers=("pain", "mri"),
                  after=[Relation("advise_early_mobilization", "after-start", start)],
                  description="Core strengthening and posture; early mobilization comes first.")


def _immobilization(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    return r.step("alert_prolonged_immobilization", triggers=("mobility",),
                  applies=f"Bed-bound for more than {r('immobilization_max_days')} days, once per bed-bound spell.",
                  description="Mobilize; assess DVT risk (deconditioning, bone loss, DVT).")


def _deformity(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    relative = r.rule("progression_relative_height_loss").value
    counts = (f" or as a criterion found after it until day {r('review_hold_until_day')}" if defn.safety else "")
    return r.step("flag_progressive_deformity", triggers=("radiograph",), after=[Relation("order_radiograph", "after")],
                  applies=f"A radiograph's height loss exceeds the first image's (the enrollment value) by at least "
                          f"{relative * 100:g}% of it, or kyphosis is up by >= {r('kyphosis_progression_deg')} degrees "
                          "since the first image that gave it.",
                  description=f"Clinician review; counts as spinal deformity at the 12-week review{counts}.")


def _new_fracture(defn: PathwayDefinition) -> Step:
    return _Reader(defn).step(
        "flag_new_vertebral_fracture", triggers=("radiograph",), after=[Relation("order_radiograph", "after")],
        applies="A radiograph names a fracture level other than the enrolled one.",
        description="Clinician review; an MRI of the new level follows.")


def _review(defn: PathwayDefinition) -> Step:
    """The 12-week review: not an action kind, the decision point the referral comes after."""
    r = _Reader(defn)
    review = r.rule("review_day").value
    text = (f"Day {review:g}: persistent pain (latest pain NRS >= {r('persistent_pain_nrs')}), progressive deformity "
            f"or pulmonary dysfunction refers for evaluation for vertebral augmentation; NRS <= "
            f"{r('resolved_pain_nrs')} reads as resolved.")
    if defn.safety:
        window = r.rule("review_evidence_window_days").value
        text += (f" Pain counts only from day {review - window:g} on (the last {window:g} days before the review; "
                 "when a pause held the review, before the pathway resumed). "
                 "Without an MRI result saying osteoporotic, or with no criterion met and no pain report since then, "
                 f"the review is held and the care team asked; it is decided when the evidence arrives, until day "
                 f"{r('review_hold_until_day')}.")
    else:
        text += " With a red flag for a pathologic fracture the referral waits for an MRI saying osteoporotic."
    films = [d for d in defn.schedules.radiograph_days.days if d <= review]
    after = [Relation(f"order_radiograph-day-{max(films)}", "after-start")] if films else []
    return Step(id=REVIEW, title="12-week review", description=text, applies="Every patient still on the pathway; "
                "held while the pathway is paused.", day=review, after=after, rules=dict(r.used),
                citation=defn.rules.review_day.cite() + f" [guideline {defn.version}]")


def _augmentation(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    review, persistent = r.rule("review_day").value, r("persistent_pain_nrs")
    applies = (f"At the 12-week review (day {review:g}): latest pain NRS >= {persistent}, progressive deformity, "
               "or pulmonary dysfunction")
    if defn.safety:
        hold = r.rule("review_hold_until_day").value
        applies += (f"; pain counts only from day {review - r.rule('review_evidence_window_days').value:g} on; an "
                    f"MRI result saying osteoporotic is needed. After a review that referred no one, until day "
                    f"{hold:g}: progressive deformity, pulmonary dysfunction, or two pain reports of NRS >= "
                    f"{persistent} at least {r('later_pain_apart_days')} days apart with none below it between")
    window = (review, r.rule("review_hold_until_day").value if defn.safety else None)
    grade = int(r.rule("kyphoplasty_min_genant_grade").value)
    bounds = {n: r(f"genant_grade_{n}_pct") for n in (1, 2, 3)}
    pct = bounds.get(grade, "?")
    children = [
        Step(id=f"refer_vertebral_augmentation-{KYPHOPLASTY}", title="Balloon kyphoplasty suggested",
             kind="refer_vertebral_augmentation", procedure=KYPHOPLASTY,
             description="Height restoration, kyphosis, less cement leakage.",
             applies=f"Genant grade >= {grade} (height loss >= {pct}%) or progressive deformity."),
        Step(id=f"refer_vertebral_augmentation-{VERTEBROPLASTY}", title="Vertebroplasty suggested",
             kind="refer_vertebral_augmentation", procedure=VERTEBROPLASTY, applies="Otherwise.",
             description="AAOS 2010: strong recommendation against vertebroplasty; the referral says so."),
    ]
    grading = ", ".join(f"{n} from {v}%" for n, v in bounds.items())
    return r.step("refer_vertebral_augmentation", kind=None, window=window, children=children, choose_one=True,
                  after=[Relation(REVIEW, "after")],
                  applies=applies + ". Never after a clinician declined augmentation.",
                  description="A referral for evaluation, not an order, with the evidence stated (VERTOS II, "
                              f"VERTOS IV, AAOS 2010). Genant grade by height loss: {grading}.")


def _pathologic(defn: PathwayDefinition) -> Step:
    return _Reader(defn).step(
        "refer_pathologic_fracture_workup", triggers=("mri",), after=[Relation("order_mri", "after-start")],
        applies="An MRI result says malignant or infection.",
        description="Urgent referral (oncology or infectious disease, and spine surgery); the pathway exits, stops "
                    "calcitonin and cancels pending radiographs, referrals, the nerve-block offer and screening.")


def _spine_surgery(defn: PathwayDefinition) -> Step:
    extra = "; a pending MRI becomes urgent" if defn.safety else ""
    return _Reader(defn).step(
        "refer_urgent_spine_surgery", triggers=("enrollment", "neuro"),
        applies="A neurological deficit: the neuro_deficit red flag at enrollment, or a neuro event reporting "
                f"one{extra}.",
        description="Urgent spine-surgery referral; the pathway goes on (a safety net beyond the guideline).")


def _outreach(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    return r.step("outreach_missed_follow_up",
                  applies=f"More than {r('outreach_after_days')} days without a pain report (the enrollment score "
                          "counts as one); once per gap, a new report resets it; not while paused.",
                  description="Contact the patient for a pain report.")


def _escalate(defn: PathwayDefinition) -> Step:
    r = _Reader(defn)
    gap = r.rule("escalate_after_days").value - r.rule("outreach_after_days").value
    return r.step("escalate_lost_to_follow_up", after=[Relation("outreach_missed_follow_up", "after-start", gap)],
                  applies=f"More than {r('escalate_after_days')} days without a pain report; once per gap.",
                  description="The care team takes over the patient's follow-up.")


def _clinician_review(defn: PathwayDefinition) -> Step:
    """One sub-action per reason (vcf-1.2 on)."""
    r = _Reader(defn)
    review, hold = r.rule("review_day").value, r.rule("review_hold_until_day").value
    start = review - r.rule("review_evidence_window_days").value
    opioid = r.rule("opioid_review_day").value

    def reason(code: str, title: str, applies: str, **timing: Any) -> Step:
        return Step(id=f"request_clinician_review-{code}", title=title, code=("reason", code),
                    kind="request_clinician_review", applies=applies,
                    description=f"A Task for the care team, details.reason {code}.", **timing)

    reasons = {
        "review_evidence_missing": reason(
            "review_evidence_missing", "Review held: evidence missing",
            f"At the 12-week review: no MRI result saying osteoporotic, or no criterion met and no pain report from "
            f"day {start:g} on; once per review, until day {hold:g}.",
            window=(review, hold), after=[Relation(REVIEW, "concurrent-with-start")]),
        "indeterminate_mri": reason(
            "indeterminate_mri", "Indeterminate MRI", "An MRI result is indeterminate: PT and augmentation stay held.",
            triggers=("mri",), after=[Relation("order_mri", "after-start")]),
        "withdrawal_handover": reason(
            "withdrawal_handover", "Withdrawal hand-over",
            "A clinician withdraws the patient: the open orders are handed over (they stay open).",
            triggers=("clinician",)),
        "pathologic_exit_medications": reason(
            "pathologic_exit_medications", "Medications after a pathologic exit",
            "The pathway exits on a pathologic fracture: review the bisphosphonate and analgesics (nothing is "
            "stopped automatically but calcitonin).", triggers=("mri",),
            after=[Relation("refer_pathologic_fracture_workup", "concurrent-with-start")]),
        "opioid_review": reason(
            "opioid_review", "Opioid course review",
            f"The opioid course was started: review on day {opioid:g}, stop by day {r('opioid_stop_by_day')}.",
            day=opioid, after=[Relation("prescribe_opioid_short_course", "after-start", opioid)]),
        "side_effect": reason(
            "side_effect", "Side effect reported",
            "Each side_effect event (drug and effect in details); nothing is stopped automatically.",
            triggers=("side_effect",)),
    }
    missing = set(REVIEW_REASONS) - set(reasons)
    if missing:
        raise ValueError(f"request_clinician_review: no step for reason(s) {', '.join(sorted(missing))}")
    return r.step("request_clinician_review", kind=None, children=[reasons[k] for k in REVIEW_REASONS],
                  applies="One Task per need, for the reasons of the sub-actions.",
                  description="What needs a clinician's eyes becomes a Task naming why (safety rules).")


STEPS: dict[ActionKind, Callable[[PathwayDefinition], Step]] = {
    "prescribe_first_line_analgesia": _at_enrollment("prescribe_first_line_analgesia", "First-line analgesia."),
    "prescribe_opioid_short_course": _opioid,
    "start_calcitonin": _start_calcitonin,
    "stop_calcitonin": _stop_calcitonin,
    "advise_early_mobilization": _at_enrollment("advise_early_mobilization",
                                                "Avoid deconditioning, bone loss and DVT; gradual return to activity."),
    "offer_brace": _at_enrollment("offer_brace", "May give symptomatic relief (evidence inconclusive)."),
    "prescribe_calcium_vitamin_d": _at_enrollment("prescribe_calcium_vitamin_d", "Osteoporosis management."),
    "prescribe_bisphosphonate": _at_enrollment("prescribe_bisphosphonate", "Prevents further fractures."),
    "order_dxa": _dxa,
    "order_mri": _mri,
    "order_radiograph": _radiographs,
    "offer_nerve_block": _nerve_block,
    "refer_physical_therapy": _physical_therapy,
    "alert_prolonged_immobilization": _immobilization,
    "flag_progressive_deformity": _deformity,
    "flag_new_vertebral_fracture": _new_fracture,
    "refer_vertebral_augmentation": _augmentation,
    "refer_pathologic_fracture_workup": _pathologic,
    "refer_urgent_spine_surgery": _spine_surgery,
    "order_adjacent_fracture_screening": _screening,
    "outreach_missed_follow_up": _outreach,
    "escalate_lost_to_follow_up": _escalate,
    "request_clinician_review": _clinician_review,
}


def steps(defn: PathwayDefinition) -> list[Step]:
    """The definition's steps in its own order of action kinds, the 12-week review just before the
    augmentation referral."""
    unknown = sorted(set(defn.actions) - set(STEPS))
    if unknown:
        raise ValueError(f"no PlanDefinition step for action kind(s) {', '.join(unknown)}")
    out = []
    for kind in defn.actions:
        if kind == "refer_vertebral_augmentation":
            out.append(_review(defn))
        out.append(STEPS[kind](defn))
    return out
