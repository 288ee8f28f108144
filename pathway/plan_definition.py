"""The guideline published as FHIR R4: a PlanDefinition, its ActivityDefinitions, a Bundle.

Generated from a :class:`~pathway.guideline.PathwayDefinition`, never kept by hand: every
threshold, window and schedule day comes from the seed, so a changed seed changes the document.
Pure (plain dicts; the tests validate them with ``fhir.resources.R4B``).

Design, for a FHIR reviewer:

- **Canonical URLs** live under ``http://example.org/fhir/vcf-pathway`` (``example.org`` is
  reserved, RFC 2606: the artifact has no public home yet). One URL per artifact, the guideline
  version as its ``version``: ``canonical(defn)`` is ``{PLAN_URL}|vcf-1.2``. Resource ids carry
  the version (``vcf-pathway-vcf-1.2``), so every released version can be served side by side.
- **Timing**: a day offset is ``timingDuration`` (the review at day 84), a window
  ``timingRange`` (nerve-block offer days 7–42; open-ended where the guideline sets no end), a
  schedule one sub-action per day, each with its own ``timingDuration``. Steps that answer an
  observation carry a ``trigger`` (``named-event``, named by the contract's event type).
- **Conditions** are ``text/plain`` sentences. The decisions run in :mod:`pathway.decisions` over
  the contract's facts, not over FHIR data; a FHIRPath or CQL copy would be a second
  implementation nothing runs or tests. The thresholds are also listed, machine-readable, in the
  ``pathway-rule`` extension on the action that uses them (name, value(s), unit, evidence status).
- **Levels**: where the version is level-aware, an order kind has one ActivityDefinition per
  region (its own CPT codes and ``bodySite``), and the action chooses one (``selectionBehavior``
  ``exactly-one``) by fracture level. A ``dynamicValue`` would need a computable expression
  (see above); separate definitions are plain, static and each says what the order carries.
  The augmentation referral likewise has one definition per suggested procedure (the order
  carries that procedure's CPT code only).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pathway.contract import ActionKind
from pathway.guideline import Code, LevelScope, PathwayDefinition, Rule, Schedule
from pathway.plan_steps import KYPHOPLASTY, VERTEBROPLASTY, Step, level_span, steps

BASE = "http://example.org/fhir/vcf-pathway"
PLAN_URL = f"{BASE}/PlanDefinition/vcf-pathway"
ACTIVITY_URL = f"{BASE}/ActivityDefinition/"
ACTION_KIND_SYSTEM = f"{BASE}/CodeSystem/action-kind"
REVIEW_REASON_SYSTEM = f"{BASE}/CodeSystem/review-reason"
RULE_EXTENSION = f"{BASE}/StructureDefinition/pathway-rule"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
_SYSTEMS = {"kind": ACTION_KIND_SYSTEM, "reason": REVIEW_REASON_SYSTEM}
# Priorities the decisions give an order kind (pathway/decisions.py); order_mri varies (urgent
# with a red flag), so its definition names none. Every other kind goes out routine.
URGENT_KINDS = ("refer_pathologic_fracture_workup", "refer_urgent_spine_surgery")
VARYING_PRIORITY = ("order_mri",)
# Words in a code's display that name the procedure it codes (the augmentation referral).
_PROCEDURE_WORDS = {KYPHOPLASTY: "kyphoplasty", VERTEBROPLASTY: "vertebroplasty"}


def fhir_id(text: str) -> str:
    """``text`` as a FHIR id (``[A-Za-z0-9.-]{1,64}``); a long one keeps a hash of the rest."""
    clean = re.sub(r"[^A-Za-z0-9.-]", "-", text) or "x"
    if len(clean) <= 64:
        return clean
    return f"{clean[:55]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def plan_id(defn: PathwayDefinition) -> str:
    """The PlanDefinition's resource id for a version, e.g. ``vcf-pathway-vcf-1.2``."""
    return fhir_id(f"vcf-pathway-{defn.version}")


def canonical(defn: PathwayDefinition) -> str:
    """``url|version`` of the version's PlanDefinition (for CarePlan.instantiatesCanonical)."""
    return f"{PLAN_URL}|{defn.version}"


# --- ActivityDefinitions ----------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    """One ActivityDefinition of an action kind: its region and/or suggested procedure."""

    kind: ActionKind
    slug: str
    title: str
    codes: tuple[Code, ...]
    region: str | None = None
    levels: tuple[str, ...] = ()
    procedure: str | None = None

    def url(self) -> str:
        """The canonical URL (without version)."""
        return ACTIVITY_URL + self.slug


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def variants(defn: PathwayDefinition, kind: ActionKind) -> list[Variant]:
    """The ActivityDefinitions of an action kind: one per region where the version is
    level-aware, split by suggested procedure where the codes name one each."""
    spec, base = defn.actions[kind], _slug(kind)
    rows = defn.level_aware.orders.get(kind, []) if defn.level_aware else []
    regional = [Variant(kind, base + (f"-{_slug(row.region)}" if len(rows) > 1 else ""), row.title,
                        tuple(row.codes), row.region, tuple(row.levels)) for row in rows]
    out = []
    for v in regional or [Variant(kind, base, spec.title, tuple(spec.codes))]:
        split = {p: [c for c in v.codes if word in c.display.lower()] for p, word in _PROCEDURE_WORDS.items()}
        if kind == "refer_vertebral_augmentation" and all(split.values()) and \
                sum(map(len, split.values())) == len(v.codes):
            out += [Variant(kind, f"{v.slug}-{_slug(word)}", f"{v.title}: {word} suggested", tuple(split[p]),
                            v.region, v.levels, p) for p, word in _PROCEDURE_WORDS.items()]
        else:
            out.append(v)
    return out


def activity_canonical(defn: PathwayDefinition, kind: ActionKind, level: str | None = None,
                       procedure: str | None = None) -> str | None:
    """``url|version`` of the ActivityDefinition an order instantiates: ``level`` picks the region,
    ``procedure`` the suggested procedure, where the version has them. None for an unknown kind, or
    when level and procedure do not pick exactly one."""
    if kind not in defn.actions:
        return None
    found = [v for v in variants(defn, kind) if (not v.levels or level in v.levels)
             and (v.procedure is None or v.procedure == procedure)]
    return f"{found[0].url()}|{defn.version}" if len(found) == 1 else None


def _concept(title: str, codes: Iterable[Code]) -> dict[str, Any]:
    """One concept, as the orders carry it: confirmed codes as codings, unconfirmed ones in the text."""
    codes = list(codes)
    confirmed = [{"system": c.system, "code": c.code, "display": c.display} for c in codes if c.code]
    unconfirmed = [c.display for c in codes if not c.code]
    text = title + (f" ({'; '.join(unconfirmed)})" if unconfirmed else "")
    return {"coding": confirmed, "text": text} if confirmed else {"text": text}


def _duration(days: float) -> dict[str, Any]:
    return {"value": _num(days), "unit": "days", "system": UCUM, "code": "d"}


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _activity(defn: PathwayDefinition, v: Variant, current: bool) -> dict[str, Any]:
    spec = defn.actions[v.kind]
    where = f" For fractures at {level_span(v.levels)} ({v.region})." if v.levels else ""
    body: dict[str, Any] = {
        "resourceType": "ActivityDefinition", "id": fhir_id(f"{v.slug}-{defn.version}"), "url": v.url(),
        "version": defn.version, "name": "".join(p.capitalize() for p in v.slug.split("-")), "title": v.title,
        "status": "active" if current else "retired",
        "description": f"Action kind {v.kind} of guideline {defn.version}, sent as a {spec.resource}.{where}",
        "relatedArtifact": [{"type": "citation", "citation": spec.cite()}],
        "kind": spec.resource,
    }
    if spec.resource != "CommunicationRequest":  # R4 CommunicationRequest has no intent
        body["intent"] = "order"
    if v.kind not in VARYING_PRIORITY:
        body["priority"] = "urgent" if v.kind in URGENT_KINDS else "routine"
    if v.kind == "stop_calcitonin":
        body["doNotPerform"] = True
    if v.region:
        body["bodySite"] = [{"text": v.region}]
    if spec.resource == "MedicationRequest":
        body.update(_product(v))
        bounds = _course_days(defn, v.kind)
        if bounds is not None:
            body["dosage"] = [{"text": v.title, "timing": {"repeat": {"boundsDuration": _duration(bounds)}}}]
    else:  # what is requested: a diagnosis code (the work-up's ICD-10-CM) is a reason, not the request
        body["code"] = _concept(v.title, [c for c in v.codes if c.system != ICD10CM])
    return body


def _product(v: Variant) -> dict[str, Any]:
    """``productCodeableConcept`` for one drug; a contained Medication, one ingredient per drug, for several."""
    if len(v.codes) <= 1:
        return {"productCodeableConcept": _concept(v.title, v.codes)}
    ingredients = [{"itemCodeableConcept": _concept(c.display, [c])} for c in v.codes]
    medication = {"resourceType": "Medication", "id": "med", "code": {"text": v.title}, "ingredient": ingredients}
    return {"contained": [medication], "productReference": {"reference": "#med", "display": v.title}}


def _course_days(defn: PathwayDefinition, kind: ActionKind) -> float | None:
    """How long a course runs, where the definition bounds it."""
    if kind == "start_calcitonin":
        return defn.rules.calcitonin_stop_day.value
    if kind == "prescribe_opioid_short_course" and defn.safety:
        return defn.safety.rules.opioid_stop_by_day.value
    return None


def activity_definitions(defn: PathwayDefinition, current: bool) -> list[dict[str, Any]]:
    """Every ActivityDefinition of a version, in the order of its action kinds; ``current`` says
    whether it is the version new patients are enrolled on (else ``retired``)."""
    return [_activity(defn, v, current) for kind in defn.actions for v in variants(defn, kind)]


def activity_definition(defn: PathwayDefinition, resource_id: str, current: bool) -> dict[str, Any] | None:
    """The ActivityDefinition with this id in a version, or None."""
    return next((a for a in activity_definitions(defn, current) if a["id"] == resource_id), None)


# --- PlanDefinition ---------------------------------------------------------------------------

def _rule_extension(name: str, rule: Rule | Schedule | LevelScope) -> dict[str, Any]:
    if isinstance(rule, Rule):
        values, unit = [{"url": "value", "valueDecimal": _num(rule.value)}], rule.unit
    elif isinstance(rule, Schedule):
        values, unit = [{"url": "value", "valueDecimal": d} for d in rule.days], "day"
    else:
        values, unit = [{"url": "value", "valueCode": level} for level in rule.levels], "fracture level"
    return {"url": RULE_EXTENSION, "extension": [
        {"url": "name", "valueCode": name}, *values, {"url": "unit", "valueString": unit},
        {"url": "evidence", "valueCode": rule.status}]}


def _definition(defn: PathwayDefinition, step: Step, kind: ActionKind) -> dict[str, Any]:
    """A leaf's definition: the ActivityDefinition, or a choice of one by fracture level."""
    found = [v for v in variants(defn, kind) if v.procedure in (None, step.procedure)]
    if len(found) == 1:
        return {"definitionCanonical": f"{found[0].url()}|{defn.version}"}
    return {"selectionBehavior": "exactly-one", "action": [{
        "id": fhir_id(f"{step.id}-{v.slug.removeprefix(_slug(kind)).strip('-')}"), "title": v.title,
        "condition": [_condition("applicability", f"The fracture level the order is for is {level_span(v.levels)}.")],
        "definitionCanonical": f"{v.url()}|{defn.version}"} for v in found]}


def _condition(kind: str, text: str) -> dict[str, Any]:
    return {"kind": kind, "expression": {"language": "text/plain", "expression": text}}


def _action(defn: PathwayDefinition, step: Step) -> dict[str, Any]:
    action: dict[str, Any] = {"id": fhir_id(step.id)}
    if step.rules:
        action["extension"] = [_rule_extension(name, rule) for name, rule in step.rules.items()]
    action.update(title=step.title, description=step.description)
    if step.code:
        action["code"] = [{"coding": [{"system": _SYSTEMS[step.code[0]], "code": step.code[1]}]}]
    if step.citation:
        action["documentation"] = [{"type": "citation", "citation": step.citation}]
    if step.triggers:
        action["trigger"] = [{"type": "named-event", "name": name} for name in step.triggers]
    action["condition"] = [_condition("applicability", step.applies)] + (
        [_condition("stop", step.stop)] if step.stop else [])
    if step.after:
        action["relatedAction"] = [{"actionId": fhir_id(r.action_id), "relationship": r.relationship,
                                    **({"offsetDuration": _duration(r.offset_days)} if r.offset_days else {})}
                                   for r in step.after]
    if step.day is not None:
        action["timingDuration"] = _duration(step.day)
    elif step.window is not None:
        low, high = step.window
        action["timingRange"] = {"low": _duration(low), **({"high": _duration(high)} if high is not None else {})}
    if step.children:
        if step.choose_one:
            action["selectionBehavior"] = "exactly-one"
        action["action"] = [_action(defn, child) for child in step.children]
    elif step.kind:
        action.update(_definition(defn, step, step.kind))
    return action


def plan_definition(defn: PathwayDefinition, current: bool) -> dict[str, Any]:
    """The version's PlanDefinition (R4 JSON); ``current`` makes it ``active``, else ``retired``."""
    r = defn.rules
    status = ("Current version: new patients are enrolled on it." if current else
              f"Retired: no new patients are enrolled on {defn.version}, but patients enrolled on it keep "
              "running it to the end (a patient keeps the version it was enrolled with).")
    return {
        "resourceType": "PlanDefinition", "id": plan_id(defn), "url": PLAN_URL, "version": defn.version,
        "extension": [_rule_extension(name, getattr(r, name)) for name in ("acute_phase_end_day", "completion_day")],
        "name": "VcfPathway", "title": defn.title,
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                             "code": "clinical-protocol", "display": "Clinical Protocol"}]},
        "status": "active" if current else "retired",
        "description": (
            f"Care pathway for an osteoporotic vertebral compression fracture, guideline {defn.version}. One "
            "long-running pathway per patient from enrollment (day 0): acute phase to day "
            f"{r.acute_phase_end_day.value:g}, 12-week review at day {r.review_day.value:g}, completion at day "
            f"{r.completion_day.value:g} after the last screening. A clinician's pause holds the schedule "
            "(radiographs, review, screenings, outreach); held steps fire on resume. "
            f"{status} Generated from the pathway definition; never edited by hand."),
        "useContext": [{"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                                 "code": "focus"},
                        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "42942008",
                                                             "display": "Compression fracture of vertebral column"}]}}],
        "usage": (f"{status} Thresholds marked 'verify' in a citation are local defaults not confirmed from a "
                  "source. Each action's pathway-rule extensions list the thresholds it uses."),
        "relatedArtifact": [
            {"type": "derived-from", "display": f"Guideline text ({defn.guideline_file})",
             "document": {"contentType": "text/plain", "title": defn.guideline_file}},
            *({"type": "citation", "label": label, "citation": text} for label, text in defn.references.items()),
        ],
        "action": [_action(defn, step) for step in steps(defn)],
    }


def plan_definitions_bundle(defns: Iterable[PathwayDefinition], current_version: str,
                            base_url: str = f"{BASE}/") -> dict[str, Any]:
    """A searchset Bundle of the PlanDefinition of every released version; ``fullUrl`` is
    ``{base_url}PlanDefinition/{id}`` (pass the API's FHIR base when serving it)."""
    entries = [{"fullUrl": f"{base_url}PlanDefinition/{plan_id(d)}", "search": {"mode": "match"},
                "resource": plan_definition(d, current=d.version == current_version)} for d in defns]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
