"""``vcf guideline show``: the pathway of a released version, read locally from seeds/ (in-process;
the console script as its own process is in ``integration/test_cli_guideline_script.py``)."""

from __future__ import annotations

import json

from cli.main import parser
from pathway.guideline import load_definition, released_definitions
from pathway.plan_definition import plan_definition


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """The command in-process, through the real parser (``main`` ends the process itself)."""
    args = parser().parse_args(["guideline", "show", *argv])
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def row(table: str, step: str) -> str:
    """The first line of a step's row."""
    return next(line for line in table.splitlines() if line.lstrip().split("  ")[0] == step)


def test_the_current_version_as_a_table(capsys):
    code, out, err = run(capsys)
    assert code == 0 and not err
    assert "guideline vcf-1.2 (current)" in out
    assert out.splitlines()[3].split() == ["step", "when", "condition", "order", "citation"]
    assert "days 7–42; on" in row(out, "offer_nerve_block")
    assert "day 84" in row(out, "12-week review") and "day 28" in row(out, "stop_calcitonin")
    assert "days 14, 42, 84" in row(out, "order_radiograph")
    assert "days 182, 365" in row(out, "order_adjacent_fracture_screening")
    assert "T1–T10: X-ray thoracic spine, 2" in row(out, "Week 2 radiograph")
    assert "Initial Management / Pain" in row(out, "start_calcitonin")
    assert "request_clinician_review" in out and "Opioid course review" in out


def test_a_named_retired_version(capsys):
    code, out, _ = run(capsys, "--version", "vcf-1.1")
    assert code == 0
    assert "guideline vcf-1.1 (retired: patients enrolled on it still run it)" in out
    assert "request_clinician_review" not in out and "T1–T10" not in out
    assert "X-ray spine, 2-3 views (CPT 72100)" in row(out, "Week 2 radiograph")


def test_fhir_prints_the_plan_definition(capsys):
    code, out, _ = run(capsys, "--version", "vcf-1.1", "--fhir")
    assert code == 0
    assert json.loads(out) == plan_definition(released_definitions()["vcf-1.1"], current=False)
    code, out, _ = run(capsys, "--fhir")
    assert json.loads(out) == plan_definition(load_definition(), current=True)


def test_an_unknown_version_is_named_and_exits_2(capsys):
    code, out, err = run(capsys, "--version", "vcf-9.9")
    assert code == 2 and not out
    assert err.strip() == "error: unknown guideline version 'vcf-9.9'; released: vcf-1.1, vcf-1.2"
