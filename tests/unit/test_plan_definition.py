"""The guideline as a FHIR PlanDefinition: valid R4, complete, and generated from the seed."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from fhir.resources.R4B.activitydefinition import ActivityDefinition
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.plandefinition import PlanDefinition

import pathway.plan_definition as plan
from pathway.contract import ACTION_KINDS, ReviewReason
from pathway.guideline import CURRENT_DEFINITION, SEEDS_DIR, Rule, load_definition, released_definitions

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
RELEASED = released_definitions()


def dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def walk(actions: list[dict]) -> list[dict]:
    """Every action and sub-action, depth first."""
    return [a for action in actions for a in [action, *walk(action.get("action", []))]]


def by_code(pd: dict, system: str = plan.ACTION_KIND_SYSTEM) -> dict[str, dict]:
    return {c["code"]: a for a in walk(pd["action"]) for cc in a.get("code", []) for c in cc["coding"]
            if c["system"] == system}


def text(action: dict) -> str:
    """Description and conditions of an action and its sub-actions, as one string."""
    parts = [a["description"] for a in walk([action]) if "description" in a]
    return " ".join(parts + [c["expression"]["expression"] for a in walk([action]) for c in a.get("condition", [])])


def days(quantity: dict) -> float:
    assert quantity["system"] == "http://unitsofmeasure.org" and quantity["code"] == "d"
    return quantity["value"]


def rule_values(resource: dict) -> dict[str, list]:
    """name -> values of the pathway-rule extensions of a PlanDefinition and all its actions."""
    found: dict[str, list] = {}
    for holder in [resource, *walk(resource["action"])]:
        for ext in holder.get("extension", []):
            assert ext["url"] == plan.RULE_EXTENSION
            parts = ext["extension"]
            name = next(p["valueCode"] for p in parts if p["url"] == "name")
            found[name] = [p.get("valueDecimal", p.get("valueCode")) for p in parts if p["url"] == "value"]
    return found


@pytest.fixture(scope="module")
def current():
    return plan.plan_definition(load_definition(), current=True)


@pytest.fixture(scope="module")
def kinds(current):
    return by_code(current)


@pytest.mark.parametrize("version", RELEASED)
def test_the_plan_and_every_activity_definition_round_trip_through_r4(version):
    defn = RELEASED[version]
    pd = plan.plan_definition(defn, current=False)
    assert dump(PlanDefinition.model_validate(pd)) == pd
    for ad in plan.activity_definitions(defn, current=False):
        assert dump(ActivityDefinition.model_validate(ad)) == ad, ad["id"]
    assert pd["status"] == "retired" and "keep running it" in pd["description"] and "keep running it" in pd["usage"]


def test_the_bundle_lists_the_plan_of_every_released_version():
    current = load_definition().version
    bundle = plan.plan_definitions_bundle(RELEASED.values(), current, base_url="https://vcf.test/v1/fhir/")
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == len(RELEASED) >= 2
    resources = [e["resource"] for e in bundle["entry"]]
    assert [r["version"] for r in resources] == list(RELEASED)
    assert {r["version"]: r["status"] for r in resources} == {
        v: "active" if v == current else "retired" for v in RELEASED}
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"https://vcf.test/v1/fhir/PlanDefinition/{r['id']}"
                                                       for r in resources]


def test_ids_urls_and_every_definition_canonical_resolve():
    ids = []
    for version, defn in RELEASED.items():
        pd = plan.plan_definition(defn, current=True)
        ads = plan.activity_definitions(defn, current=True)
        assert pd["url"] == plan.PLAN_URL and plan.canonical(defn) == f"{plan.PLAN_URL}|{version}"
        assert pd["version"] == version and pd["type"]["coding"][0]["code"] == "clinical-protocol"
        ids += [pd["id"], *(ad["id"] for ad in ads)]
        targets = {f"{ad['url']}|{ad['version']}" for ad in ads}
        used = {a["definitionCanonical"] for a in walk(pd["action"]) if "definitionCanonical" in a}
        assert used == targets  # every ActivityDefinition is used, every reference resolves
        action_ids = [a["id"] for a in walk(pd["action"])]
        assert len(set(action_ids)) == len(action_ids)
        assert {r["actionId"] for a in walk(pd["action"]) for r in a.get("relatedAction", [])} <= set(action_ids)
        for ad in ads:
            assert plan.activity_definition(defn, ad["id"], current=True) == ad
    assert all(FHIR_ID.match(i) for i in ids) and len(set(ids)) == len(ids)
    assert plan.activity_definition(load_definition(), "no-such-definition", current=True) is None
    assert plan.fhir_id("vcf pathway/" + "x" * 80) == plan.fhir_id("vcf pathway/" + "x" * 80)
    assert FHIR_ID.match(plan.fhir_id("vcf pathway/" + "x" * 80))


def test_every_action_kind_of_the_contract_is_an_action_with_a_definition(current, kinds):
    assert set(kinds) == set(ACTION_KINDS)
    for kind, action in kinds.items():
        assert any("definitionCanonical" in a for a in walk([action])), kind
        assert action["documentation"][0]["citation"].startswith("Guideline: "), kind
        assert action["condition"][0]["kind"] == "applicability"
        conditions = [c for a in walk([action]) for c in a.get("condition", [])]
        assert all(c["expression"]["language"] == "text/plain" for c in conditions)
    reasons = by_code(current, plan.REVIEW_REASON_SYSTEM)
    assert set(reasons) == set(get_args(ReviewReason))


def test_the_thresholds_are_in_the_plan(current, kinds):
    review = next(a for a in current["action"] if a["id"] == "twelve-week-review")
    assert days(review["timingDuration"]) == 84
    assert review["relatedAction"] == [{"actionId": "order-radiograph-day-84", "relationship": "after-start"}]
    augmentation = kinds["refer_vertebral_augmentation"]
    assert augmentation["relatedAction"][0] == {"actionId": "twelve-week-review", "relationship": "after"}
    assert (days(augmentation["timingRange"]["low"]), days(augmentation["timingRange"]["high"])) == (84, 182)
    assert "latest pain NRS >= 5" in text(augmentation) and "from day 70" in text(augmentation)
    assert "at least 14 days apart" in text(augmentation)
    assert "Genant grade >= 2 (height loss >= 25%)" in text(augmentation)
    block = kinds["offer_nerve_block"]
    assert (days(block["timingRange"]["low"]), days(block["timingRange"]["high"])) == (7, 42)
    assert "NRS >= 7" in text(block) and "L2–L4 only" in text(block) and block["trigger"][0]["name"] == "pain"
    assert block["condition"][1] == {"kind": "stop", "expression": {
        "language": "text/plain", "expression": "Not confirmed by a clinician by day 42: the offer expires."}}
    assert [days(a["timingDuration"]) for a in kinds["order_radiograph"]["action"]] == [14, 42, 84]
    screening = kinds["order_adjacent_fracture_screening"]["action"]
    assert [days(a["timingDuration"]) for a in screening if "timingDuration" in a] == [182, 365]
    assert ">= 3 points above the lowest" in text(screening[-1]) and "<= 4" in text(screening[-1])
    assert "within 60 days" in text(screening[0])
    stop = kinds["stop_calcitonin"]
    assert days(stop["timingDuration"]) == 28
    assert stop["relatedAction"][0]["actionId"] == "start-calcitonin"
    assert days(stop["relatedAction"][0]["offsetDuration"]) == 28
    assert "at most 5 days old" in text(kinds["start_calcitonin"])
    assert "no red flag history_of_cancer" in text(kinds["start_calcitonin"])
    opioid = text(kinds["prescribe_opioid_short_course"])
    assert "NRS >= 7 at enrollment" in opioid and "reviewed on day 7" in opioid and "stopped by day 14" in opioid
    assert "from day 7 on with NRS <= 4" in text(kinds["refer_physical_therapy"])
    assert "more than 7 days" in text(kinds["alert_prolonged_immobilization"])
    deformity = text(kinds["flag_progressive_deformity"])
    assert "by at least 20% of it" in deformity and "up by >= 5 degrees" in deformity
    assert "More than 14 days" in text(kinds["outreach_missed_follow_up"])
    assert "More than 28 days" in text(kinds["escalate_lost_to_follow_up"])
    assert kinds["escalate_lost_to_follow_up"]["relatedAction"][0]["actionId"] == "outreach-missed-follow-up"
    assert "T-score <= -2.5" in text(kinds["order_dxa"]) and "(3 days for an urgent order)" in text(kinds["order_mri"])
    reasons = by_code(current, plan.REVIEW_REASON_SYSTEM)
    assert "from day 70 on" in text(reasons["review_evidence_missing"])
    assert days(reasons["opioid_review"]["timingDuration"]) == 7


def test_every_rule_of_the_definition_is_listed_with_its_value(current):
    defn = load_definition()
    listed = rule_values(current)
    rules = {**dict(defn.rules), **dict(defn.safety.rules)}
    for name, rule in rules.items():
        assert isinstance(rule, Rule) and listed[name] == [rule.value], name
    assert listed["radiograph_days"] == [14, 42, 84] and listed["screening_days"] == [182, 365]
    assert listed["nerve_block_scope"] == ["L2", "L3", "L4"]


def test_vcf_1_1_has_neither_the_review_task_nor_level_aware_codes():
    defn = RELEASED["vcf-1.1"]
    pd = plan.plan_definition(defn, current=False)
    assert "request_clinician_review" not in by_code(pd) and not by_code(pd, plan.REVIEW_REASON_SYSTEM)
    ads = plan.activity_definitions(defn, current=False)
    assert not any("bodySite" in ad for ad in ads)
    mri = [ad for ad in ads if ad["url"].endswith("/order-mri")]
    assert [c["code"] for c in mri[0]["code"]["coding"]] == ["72148"]
    assert not any(a.get("selectionBehavior") == "exactly-one" and "T1" in text(a) for a in walk(pd["action"]))
    assert "nerve_block_scope" not in rule_values(pd)
    assert plan.activity_canonical(defn, "order_mri", "T8") == f"{plan.ACTIVITY_URL}order-mri|vcf-1.1"


def test_vcf_1_2_has_the_review_task_and_level_aware_codes(kinds):
    defn = RELEASED["vcf-1.2"]
    ads = {ad["url"].removeprefix(plan.ACTIVITY_URL): ad for ad in plan.activity_definitions(defn, current=True)}
    assert ads["order-mri-thoracic-spine"]["code"]["coding"][0]["code"] == "72146"
    assert ads["order-mri-thoracic-spine"]["bodySite"] == [{"text": "thoracic spine"}]
    assert "T1–T12" in ads["order-mri-thoracic-spine"]["description"]
    assert ads["order-radiograph-thoracolumbar-junction"]["code"]["coding"][0]["code"] == "72080"
    assert [c["code"] for c in ads["order-adjacent-fracture-screening"]["code"]["coding"]] == ["72070", "72100"]
    assert ads["refer-vertebral-augmentation-thoracic-kyphoplasty"]["code"]["coding"][0]["code"] == "22513"
    assert ads["refer-vertebral-augmentation-lumbar-vertebroplasty"]["code"]["coding"][0]["code"] == "22511"
    assert ads["request-clinician-review"]["kind"] == "Task"
    week_2 = kinds["order_radiograph"]["action"][0]
    assert week_2["selectionBehavior"] == "exactly-one"
    assert [text(a) for a in week_2["action"]] == [f"The fracture level the order is for is {span}."
                                                   for span in ("T1–T10", "T11–L1", "L2–L5")]
    assert plan.activity_canonical(defn, "order_radiograph", "T12") == \
        f"{plan.ACTIVITY_URL}order-radiograph-thoracolumbar-junction|vcf-1.2"
    assert plan.activity_canonical(defn, "refer_vertebral_augmentation", "L2", "balloon_kyphoplasty") == \
        f"{plan.ACTIVITY_URL}refer-vertebral-augmentation-lumbar-kyphoplasty|vcf-1.2"
    assert plan.activity_canonical(defn, "order_mri") is None  # no level: no region to choose


def test_activity_definitions_say_what_the_order_goes_out_as():
    defn = load_definition()
    ads = {ad["url"].removeprefix(plan.ACTIVITY_URL): ad for ad in plan.activity_definitions(defn, current=True)}
    for slug, ad in ads.items():
        kind = next(k for k in defn.actions if slug.startswith(k.replace("_", "-")))
        assert ad["kind"] == defn.actions[kind].resource and ad["version"] == defn.version, slug
        assert ("productCodeableConcept" in ad or "productReference" in ad) == (ad["kind"] == "MedicationRequest")
    first_line = ads["prescribe-first-line-analgesia"]
    assert first_line["productReference"] == {"reference": "#med", "display": "Acetaminophen and an NSAID"}
    ingredients = first_line["contained"][0]["ingredient"]
    assert [i["itemCodeableConcept"]["coding"][0]["code"] for i in ingredients] == ["161", "5640"]
    calcitonin = ads["start-calcitonin"]
    assert "coding" not in calcitonin["productCodeableConcept"]  # RxNorm code not confirmed: text only
    assert "not confirmed" in calcitonin["productCodeableConcept"]["text"]
    assert days(calcitonin["dosage"][0]["timing"]["repeat"]["boundsDuration"]) == 28
    assert ads["stop-calcitonin"]["doNotPerform"] is True
    assert ads["refer-pathologic-fracture-workup"]["priority"] == "urgent"
    # A diagnosis is the work-up's reason, not what it requests (as on its ServiceRequests).
    workup = ads["refer-pathologic-fracture-workup"]
    assert workup["code"] == {"text": defn.actions["refer_pathologic_fracture_workup"].title}
    assert ads["refer-urgent-spine-surgery"]["priority"] == "urgent"
    assert "priority" not in ads["order-mri-lumbar-spine"] and ads["order-dxa"]["priority"] == "routine"
    assert "intent" not in ads["outreach-missed-follow-up"]  # R4 CommunicationRequest has no intent


def test_a_changed_seed_changes_the_document(tmp_path):
    raw = json.loads((SEEDS_DIR / CURRENT_DEFINITION).read_text(encoding="utf-8"))
    raw["version"] = "vcf-1.2-test"
    raw["rules"]["persistent_pain_nrs"]["value"] = 6
    raw["rules"]["nerve_block_until_day"]["value"] = 35
    raw["schedules"]["radiograph_days"]["days"] = [10, 42, 84]
    raw["safety"]["rules"]["review_evidence_window_days"]["value"] = 21
    raw["level_aware"]["nerve_block_scope"]["levels"] = ["L3", "L4"]
    (tmp_path / "seed.json").write_text(json.dumps(raw), encoding="utf-8")
    changed = plan.plan_definition(load_definition(tmp_path / "seed.json"), current=True)
    kinds = by_code(changed)
    assert changed["version"] == "vcf-1.2-test" and changed["id"] == "vcf-pathway-vcf-1.2-test"
    assert "latest pain NRS >= 6" in text(kinds["refer_vertebral_augmentation"])
    assert "from day 63" in text(kinds["refer_vertebral_augmentation"])
    assert days(kinds["offer_nerve_block"]["timingRange"]["high"]) == 35
    assert "L3–L4 only" in text(kinds["offer_nerve_block"])
    assert [days(a["timingDuration"]) for a in kinds["order_radiograph"]["action"]] == [10, 42, 84]
    assert rule_values(changed)["persistent_pain_nrs"] == [6]
    assert dump(PlanDefinition.model_validate(changed)) == changed


def test_the_generator_imports_only_the_standard_library_pydantic_and_pathway():
    for module in ("plan_definition", "plan_steps"):
        tree = ast.parse((Path(plan.__file__).parent / f"{module}.py").read_text(encoding="utf-8"))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        roots = {name.split(".")[0] for name in names}
        assert roots <= set(sys.stdlib_module_names) | {"__future__", "pydantic", "pathway"}, module
