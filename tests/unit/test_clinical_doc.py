"""docs/clinical-decisions.md and docs/contract.md are what ``python -m pathway.clinical_doc``
writes from the current definition and the contract's models, and they show every rule, safety
rule, schedule, action kind, review reason, event type and field; the writer copes with
definitions it has not seen."""

from __future__ import annotations

import json
import re
from typing import get_args

import pytest

from pathway import clinical_doc as doc
from pathway import contract_doc
from pathway.contract import (
    Action,
    Enrollment,
    ReviewReason,
    Scenario,
    ScenarioEvent,
    parse_enrollment,
    parse_event,
    parse_scenario,
)
from pathway.guideline import SEEDS_DIR, ActionSpec, Code, Rule, load_definition
from workflows.models import DecisionNote

REGENERATE = f"out of date: run {doc.COMMAND} and commit the result"


@pytest.fixture(scope="module")
def definition():
    return load_definition()


@pytest.fixture(scope="module")
def documents(definition):
    return doc.render_documents(definition)


@pytest.fixture(scope="module")
def clinical(documents):
    return documents[doc.DOCS / "clinical-decisions.md"]


@pytest.fixture(scope="module")
def contract_text(documents):
    return documents[doc.DOCS / "contract.md"]


def section(text: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next one."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no section {heading!r}"
    return match.group(1)


def row(table_text: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    for line in table_text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


# --- The committed documents ------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(doc.DOCUMENTS))
def test_the_committed_document_is_what_the_generator_writes(documents, name):
    path = doc.DOCS / name
    assert path.is_file(), f"{path} is missing: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == documents[path], f"{path} is {REGENERATE}"


def test_the_check_command_agrees(capsys):
    assert doc.main(["--check"]) == 0, capsys.readouterr().err


def test_no_template_syntax_is_left(documents):
    for text in documents.values():
        assert "{{" not in text and "<!-- generated:" not in text and "<!-- notes" not in text


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("name", ["README.md", "docs/api.md", *(f"docs/{d}" for d in doc.DOCUMENTS)])
def test_every_link_and_named_document_is_in_the_repository(documents, name):
    path = doc.ROOT / name
    text = documents.get(path) or path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.is_relative_to(doc.ROOT) and linked.exists(), f"{name}: {target}"
        if anchor:
            linked_text = documents.get(linked) or linked.read_text(encoding="utf-8")
            headings = re.findall(r"^#+ (.*)$", linked_text, re.MULTILINE)
            assert anchor in {slug(h) for h in headings}, f"{name}: {target}"
    for named in set(re.findall(r"[\w./-]+\.md\b", text)):
        assert any((base / named).exists() for base in (doc.ROOT, doc.DOCS, path.parent)), f"{name}: {named}"


# --- Clinical decisions: every rule, schedule and action kind -------------------------------------

def test_every_rule_has_its_row_with_value_status_and_source(definition, clinical):
    rules = section(clinical, "Rules")
    assert doc.safety_rules(definition), "the current definition has a safety block"
    for name, rule in [*definition.rules, *doc.safety_rules(definition)]:
        if rule is None:
            continue
        cells = row(rules, f"`{name}`")
        assert cells[1] == f"{rule.value:g}"
        assert cells[3] == doc.STATUS_TEXT[rule.status]
        assert cells[4] == rule.section
        assert all(ref in cells[5] for ref in rule.refs)


def test_every_schedule_has_its_row(definition, clinical):
    schedules = section(clinical, "Schedules")
    for name, schedule in definition.schedules:
        cells = row(schedules, f"`{name}`")
        assert cells[1] == ", ".join(str(d) for d in schedule.days)
        assert cells[2] == doc.STATUS_TEXT[schedule.status]


def test_every_action_kind_has_its_row_with_title_codes_and_citation(definition, clinical):
    actions = section(clinical, "Action kinds")
    for kind, spec in definition.actions.items():
        cells = row(actions, f"`{kind}`")
        assert cells[1] == spec.title.replace("|", "\\|")
        assert cells[3] == spec.resource
        verify = definition.rules.kyphosis_progression_deg  # any rule marked verify
        assert cells[6] in (definition.cite(kind), definition.cite(kind, (verify,)))
        if definition.level_aware and kind in definition.level_aware.orders:
            # its codes are the region's (the kind's own are for versions without level-aware orders)
            assert "[Level-aware orders](#level-aware-orders)" in cells[4]
            continue
        for code in spec.codes:
            assert (code.code or "(no code)") in cells[4]
            assert code.display in cells[4]


@pytest.mark.parametrize("kind", ["prescribe_opioid_short_course", "order_radiograph", "offer_nerve_block",
                                  "refer_physical_therapy", "alert_prolonged_immobilization",
                                  "order_adjacent_fracture_screening", "outreach_missed_follow_up",
                                  "escalate_lost_to_follow_up"])
def test_an_action_that_always_rests_on_a_local_default_is_listed_verify(definition, clinical, kind):
    """As its citation reads when it fires (safety rule 14)."""
    assert "(verify)" in row(section(clinical, "Action kinds"), f"`{kind}`")[6]


def test_a_verify_code_makes_the_action_verify(definition, clinical):
    actions = section(clinical, "Action kinds")
    for kind, spec in definition.actions.items():
        if any(c.code is None or "verify" in c.display.lower() for c in spec.codes):
            assert row(actions, f"`{kind}`")[5] == "verify", kind


def test_the_current_version_is_listed(definition, clinical):
    versions = section(clinical, "Guideline versions")
    assert f"**`{definition.version}`** (current" in versions
    for name, raw in doc.released_definitions():
        assert f"`seeds/{name}`" in versions and f"`{raw['version']}`" in versions


def test_prose_values_come_from_the_definition(definition, clinical):
    assert f"day {definition.rules.review_day.value:g}" in section(clinical, "Decisions in words")
    assert f"definition **{definition.version}**" in clinical
    safety = definition.safety.rules
    rules = section(clinical, "Safety rules (vcf-1.2)")
    assert f"until day {safety.review_hold_until_day.value:g}" in rules
    evidence_from = definition.rules.review_day.value - safety.review_evidence_window_days.value
    assert f"pain report from day {evidence_from:g}" in rules


def test_every_review_reason_is_described(definition, clinical, contract_text):
    when = row(section(clinical, "Action kinds"), "`request_clinician_review`")[2]
    reasons = section(contract_text, "Actions")
    for reason in get_args(ReviewReason):
        assert f"`{reason}`" in when, reason
        assert "not described yet" not in row(reasons, f"`{reason}`")[1], reason
        assert f"`{reason}`" in section(clinical, "Safety rules (vcf-1.2)"), reason


def test_a_version_without_the_safety_block_says_so():
    older = load_definition(SEEDS_DIR / "vcf_pathway_v1.json")
    assert older.safety is None
    text = doc.render(doc.Template("t.md", "<!-- generated:safety_rules -->\n"), older)
    assert f"{older.version} has no `safety` block" in text
    with pytest.raises(doc.TemplateError, match="review_hold_until_day"):
        doc.render(doc.Template("t.md", "Until day {{review_hold_until_day}}.\n"), older)


# --- Contract: every event type and field -----------------------------------------------------------

def test_every_event_type_and_field_is_in_the_contract(contract_text):
    for model in contract_doc.event_models():
        assert f"### `{model.model_fields['type'].default}`" in contract_text
        for name in model.model_fields:
            if name != "type":
                assert f"| `{name}` |" in contract_text, (model.__name__, name)
    for model in (Enrollment, Action, Scenario, ScenarioEvent):
        for name in model.model_fields:
            assert f"| `{name}` |" in contract_text, (model.__name__, name)


def test_the_contract_examples_are_valid(contract_text):
    blocks = re.findall(r"```json\n(.*?)```", contract_text, re.DOTALL)
    assert len(blocks) >= 3
    for block in blocks:
        raw = json.loads(block)
        if "patient" in raw:
            parse_scenario(raw)
        elif "text" in raw:
            DecisionNote.model_validate(raw)
        elif "kind" in raw:
            Action.model_validate(raw)
        elif "fracture_level" in raw:
            parse_enrollment(raw)
        else:
            parse_event(raw)


# --- Definitions the generator has not seen ----------------------------------------------------------

def test_a_new_rule_and_action_kind_get_rows_without_prose(definition):
    # A kind this code does not know yet: model_copy does not validate, so the writer sees it.
    rules = definition.rules.model_copy(update={
        "second_opinion_after_days": Rule(value=10, unit="days after the review", section="Monitoring and Follow-up",
                                          verify=True, note="A second opinion is sought this late.")})
    actions = {**definition.actions, "request_second_opinion": ActionSpec(
        title="Second opinion", section="Monitoring and Follow-up", resource="Task",
        codes=[Code(system="urn:example", code="X1", display="example code (verify)")])}
    newer = definition.model_copy(update={"version": "vcf-9.9", "rules": rules, "actions": actions})
    text = doc.render_documents(newer)[doc.DOCS / "clinical-decisions.md"]
    cells = row(section(text, "Rules"), "`second_opinion_after_days`")
    assert cells[1:4] == ["10", "days after the review", "verify"]
    cells = row(section(text, "Action kinds"), "`request_second_opinion`")
    assert "not described yet" in cells[2] and "urn:example `X1`" in cells[4] and cells[5] == "verify"
    assert "**vcf-9.9**" in text
    assert doc.undescribed_action_kinds(newer) == ["request_second_opinion"]
    assert doc.undescribed_action_kinds(definition) == []


def test_a_rule_the_version_does_not_set_is_named(definition):
    older = definition.model_copy(update={"rules": definition.rules.model_copy(update={"result_overdue_days": None})})
    template = doc.Template("t.md", "<!-- generated:rules -->\n")
    assert "does not set" in doc.render(template, older) and "`result_overdue_days`" in doc.render(template, older)


def test_a_new_top_level_setting_is_shown(definition):
    wider = definition.model_copy(update={"review_windows": {"evidence": 14}})
    shown = doc.render(doc.Template("t.md", "<!-- generated:other_settings -->\n"), wider)
    assert "`review_windows`" in shown and "evidence" in shown


def test_prose_that_names_nothing_is_refused(definition):
    with pytest.raises(doc.TemplateError, match="no_such_rule"):
        doc.render(doc.Template("t.md", "Day {{no_such_rule}}.\n"), definition)
    with pytest.raises(doc.TemplateError, match="action:no_such_kind"):
        doc.render(doc.Template("t.md", "<!-- generated:actions -->\n", {"action:no_such_kind": "never"}), definition)
    with pytest.raises(doc.TemplateError, match="no table"):
        doc.render(doc.Template("t.md", "<!-- generated:no_such_table -->\n"), definition)


def test_template_notes_and_placeholders(definition):
    template = doc.parse_template("t.md", (
        "<!-- template: for the reader only -->\n"
        "Radiographs in weeks {{radiograph_days:weeks}}, about {{screening_days:months}} months, "
        "{{progression_relative_height_loss:percent}}.\n"
        "<!-- generated:actions -->\n"
        "<!-- notes\n"
        "action:order_dxa: At enrollment,\n"
        "  always.\n"
        "-->\n"))
    assert template.notes == {"action:order_dxa": "At enrollment, always."}
    text = doc.render(template, definition)
    assert "for the reader only" not in text
    assert "weeks 2, 6 and 12, about 6 and 12 months, 20%." in text
    assert row(text, "`order_dxa`")[2] == "At enrollment, always."


def test_several_released_versions_are_listed_with_their_changes(monkeypatch, tmp_path):
    seed = json.loads((doc.SEEDS_DIR / doc.CURRENT_DEFINITION).read_text(encoding="utf-8"))
    # An older version without the safety block, its clinician reviews and a rule (it does not load).
    older = json.loads(json.dumps(seed))
    older["version"] = "vcf-1.0"
    older["rules"]["severe_pain_nrs"].update(value=8, verify=False)
    del older["rules"]["review_day"], older["safety"], older["actions"]["request_clinician_review"]
    older["urgent_mri_red_flags"].remove("neuro_deficit")
    # A newer version this code loads: a copy of the seed with a later hold limit.
    newer = json.loads(json.dumps(seed))
    newer["version"] = "vcf-1.10"
    newer["safety"]["rules"]["review_hold_until_day"]["value"] = 200
    # A still newer version naming an action kind this code does not know: it does not load.
    unknown = json.loads(json.dumps(newer))
    unknown["version"] = "vcf-1.11"
    unknown["actions"]["request_second_opinion"] = {"title": "t", "section": "s", "resource": "Task"}
    for name, raw in (("b_old.json", older), (doc.CURRENT_DEFINITION, seed), ("a_new.json", newer),
                      ("c_unknown.json", unknown)):
        (tmp_path / name).write_text(json.dumps(raw), encoding="utf-8")
    (tmp_path / "not_a_definition.json").write_text("[]", encoding="utf-8")
    monkeypatch.setattr(doc, "SEEDS_DIR", tmp_path)
    table = doc.render(doc.Template("t.md", "<!-- generated:versions -->\n"), load_definition())
    lines = [line for line in table.splitlines() if line.startswith("| `seeds/")]
    assert [line.split("|")[1].strip() for line in lines] == [
        "`seeds/b_old.json`", f"`seeds/{doc.CURRENT_DEFINITION}`", "`seeds/a_new.json`", "`seeds/c_unknown.json`"]
    old, current, new, unknown_row = lines
    assert "does not load with this code" in old
    assert "(current, documented here)" in current and "does not load" not in current
    assert "added rules `review_day`" in current and "`severe_pain_nrs` 8 → 7" in current
    assert "`severe_pain_nrs` confirmed → verify" in current
    assert "added safety rules `review_evidence_window_days`" in current and "| 25 + 7 safety |" in current
    assert "`urgent_mri_red_flags` +`neuro_deficit`" in current
    assert "added action kinds `request_clinician_review`" in current
    assert "does not load" not in new and "`review_hold_until_day` 182 → 200" in new
    assert "does not load with this code" in unknown_row
    assert "added action kinds `request_second_opinion`" in unknown_row
