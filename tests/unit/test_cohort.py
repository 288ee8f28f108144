"""The cohort simulation (cohort/): its model as data, the same files for the same seed, what-if
validation, the summary's figures, and the driver's timing rules. In-process (one worker) and
without plots: the unit lane starts no process (matplotlib asks fc-list for the system fonts when it
first builds its font cache); tests/integration/test_cohort_cli.py runs the command, with workers
and plots."""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from cli.main import parser
from cohort import cli as cohort_cli
from cohort.agreement import choose, keys_of_run, scenario_of
from cohort.engine import run_patient
from cohort.model import CohortModelError, load_model, parse_model, sources
from cohort.patients import draw_patient, quarter
from cohort.report import KINDS, compare_rows, summary, write_files
from cohort.run import chunks, simulate_cohort
from cohort.whatif import WhatIfError, apply, label
from pathway.contract import ACTION_KINDS, PainEvent
from pathway.facts import GRACE, SETTLE
from tests.helpers import ROOT
from tests.unit.walk import Walk

MODEL = ROOT / "seeds" / "cohorts" / "default.json"


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


def raw_model() -> dict:
    return json.loads(MODEL.read_text(encoding="utf-8"))


def run_cli(*argv: str) -> int:
    args = parser().parse_args(["cohort", *argv])
    assert isinstance(args, argparse.Namespace)
    return cohort_cli.main(args)


# --- The model as data ------------------------------------------------------------------------

def test_default_model_names_a_source_for_every_figure(model):
    found = sources(model)
    assert len(found) >= 40
    for path, text in found.items():
        cited = any(mark in text for mark in ("et al.", "VERTOS", "Guideline", "Cochrane"))
        assert text.startswith("Assumption") or "assumption" in text or cited, path
    assert "0.19" in found["pain.non_responder"] and "VERTOS II" in found["pain.non_responder"]
    assert "19.2%" in found["new_fracture.within_year"] and "Lindsay" in found["new_fracture.within_year"]
    assert model.new_fracture.within_year.p == pytest.approx(0.192)
    assert {"horizon", "reporting.interval", "progression.measurement"} <= found.keys()  # plain figures too


@pytest.mark.parametrize(("path", "value", "field", "reason"), [
    (("pain", "non_responder", "p"), 1.5, "pain.non_responder.p", "less than or equal to 1"),
    (("reporting", "adherence", "source"), "", "reporting.adherence.source", "at least 12 characters"),
    (("enrollment", "height_loss_pct", "min"), 80, "enrollment.height_loss_pct", "min <= mean <= max"),
    (("enrollment", "fracture_level", "weights"), {"L7": 1}, "enrollment.fracture_level.weights.L7.[key]",
     "Input should be"),
    (("enrollment", "pain_nrs", "weights"), {"5": 0}, "enrollment.pain_nrs.weights", "at least one weight"),
    (("imaging", "mri_delay_days", "dist"), "gamma", "imaging.mri_delay_days.dist", "Input should be 'lognormal'"),
    (("clinician", "withdraw", "odds"), 2, "clinician.withdraw.odds", "unknown field"),
    # Values that become contract fields stay within the contract's ranges (a drawn patient never fails it).
    (("enrollment", "height_loss_pct", "max"), 150, "enrollment.height_loss_pct", "within 0 to 100"),
    (("pain", "responder", "floor_nrs", "max"), 15, "pain.responder.floor_nrs", "within 0 to 10"),
    (("imaging", "dxa_t_score", "min"), -8, "imaging.dxa_t_score", "within -6 to 4"),
    (("progression", "kyphosis_deg", "min"), -5, "progression.kyphosis_deg", "within 0 to 90"),
    (("reporting", "interval_source"), "", "reporting.interval_source", "at least 12 characters"),
])
def test_a_bad_model_is_refused_naming_the_field(path, value, field, reason):
    raw = raw_model()
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(CohortModelError) as caught:
        parse_model(raw)
    assert any(line.startswith(field) and reason in line for line in caught.value.errors), caught.value.errors


def test_a_bad_model_file_exits_2_naming_the_field(tmp_path, capsys):
    raw = raw_model()
    raw["horizon_days"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    assert run_cli(str(bad), "--patients", "3", "--out", str(tmp_path / "out"), "--workers", "1") == 2
    assert "horizon_days: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- Patients ---------------------------------------------------------------------------------

def test_patients_are_drawn_the_same_way_every_time(model):
    a, b = draw_patient(model, 5, 17), draw_patient(model, 5, 17)
    assert a.enrollment == b.enrollment and a.background == b.background
    assert draw_patient(model, 6, 17).background != a.background
    assert draw_patient(model, 5, 18).background != a.background


def test_events_fall_on_quarter_days_that_are_never_whole_days(model, definition):
    for index in range(20):
        patient = draw_patient(model, 1, index)
        run = run_patient(definition, patient, model.horizon_days, keep_events=True)
        for day, _ in run.events:
            assert day * 4 == int(day * 4) and day != int(day) and 0 < day <= model.horizon_days
    assert quarter(14.0) == 14.25 and quarter(14.1) == 14.25 and quarter(14.5) == 14.5


# --- The driver keeps the workflow's timing rules ----------------------------------------------

def test_the_driver_decides_as_the_walk_does_at_events_and_due_instants(model, definition):
    """The same patient by hand (tests/unit/walk.py): the same actions, by kind, id and day."""
    patient = draw_patient(model, 2, 3)
    run = run_patient(definition, patient, model.horizon_days, keep_events=True)
    e = patient.enrollment
    walk = Walk(definition, id=e.id, fracture_level=e.fracture_level, height_loss_pct=e.height_loss_pct,
                pain_nrs=e.pain_nrs, onset_days_before_enrollment=e.onset_days_before_enrollment,
                red_flags=list(e.red_flags))
    for day, event in run.events:
        walk.until(day - 1e-9)
        walk.event(day, **event.model_dump(mode="json", exclude_none=True))
    walk.until(model.horizon_days + 2 * SETTLE)
    ours = {(kind, action_id) for kind, _, action_id in keys_of_run(run)}
    assert ours == {(a.kind, a.id) for a in walk.actions}


def test_a_more_than_check_rings_after_its_instant_and_an_event_at_a_step_day_comes_first(model, definition):
    patient = draw_patient(model, 1, 0)
    patient.background = [(7.5, PainEvent(nrs=3))]  # then silence: outreach after more than 14 days
    patient.model = model.model_copy(update={"imaging": model.imaging.model_copy(
        update={"not_resulted": model.imaging.not_resulted.model_copy(update={"p": 1.0})})})
    run = run_patient(definition, patient, 60)
    outreach = next(row for row in run.actions if row[1] == "outreach_missed_follow_up")
    assert outreach[0] == round(7.5 + 14 + GRACE + SETTLE, 3)
    radiograph = next(row for row in run.actions if row[1] == "order_radiograph")
    assert radiograph[0] == 14.0  # decided a second after day 14, rounded as the workflow rounds
    # Overdue results escalate once each, a second after "more than 14 days" (urgent MRI: 3).
    assert [order for _, order in run.escalations][:2] == ["order_dxa", "order_mri"]
    assert run.escalations[0][0] == round(14 + GRACE + SETTLE, 3)


# --- Same seed, same files --------------------------------------------------------------------

def write(model, definition, out: Path, seed: int, patients: int) -> dict:
    results = simulate_cohort(model, definition, seed, patients)
    return write_files(out, results, model, definition, seed, {})


def test_the_same_seed_gives_the_same_files_byte_for_byte(model, definition, tmp_path):
    """The CSV and JSON files here; the PNGs, and worker processes, in tests/integration/test_cohort_cli.py."""
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write(model, definition, tmp_path / name, seed, 12)
    for file in ("actions.csv", "patients.csv", "weekly_demand.csv", "summary.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    assert (tmp_path / "a" / "actions.csv").read_bytes() != (tmp_path / "c" / "actions.csv").read_bytes()
    summary = (tmp_path / "a" / "summary.json").read_text(encoding="utf-8")
    assert "second" not in summary and "elapsed" not in summary


def test_chunks_cover_every_patient_once_in_order():
    for patients, workers in ((1, 1), (10, 2), (10_000, 2), (999, 7)):
        parts = chunks(patients, workers)
        assert [i for start, stop in parts for i in range(start, stop)] == list(range(patients))


# --- What-if ----------------------------------------------------------------------------------

def test_set_changes_any_rule_through_the_definitions_own_validation(definition):
    changed, changes = apply(definition, ["persistent_pain_nrs=6", "opioid_review_day=10",
                                          "schedules.radiograph_days=14,42"])
    assert changed.rules.persistent_pain_nrs.value == 6
    assert changed.safety.rules.opioid_review_day.value == 10
    assert changed.schedules.radiograph_days.days == [14, 42]
    assert changed.version == "vcf-1.2+what-if"  # three changes: too long to spell out in a version
    assert apply(definition, ["persistent_pain_nrs=6"])[0].version == "vcf-1.2+persistent_pain_nrs=6"
    assert definition.rules.persistent_pain_nrs.value == 5  # the current definition is untouched
    assert [path for path, _ in changes] == ["rules.persistent_pain_nrs", "safety.rules.opioid_review_day",
                                             "schedules.radiograph_days"]


@pytest.mark.parametrize(("text", "says"), [
    ("persistent_pain=6", "unknown rule 'persistent_pain'"),
    ("rules.opioid_review_day=3", "unknown rule 'rules.opioid_review_day' in rules"),
    ("persistent_pain_nrs=six", "persistent_pain_nrs: 'six' is not a number"),
    ("persistent_pain_nrs=nan", "not a finite number"),
    ("persistent_pain_nrs", "expected RULE=VALUE"),
    ("radiograph_days=14,six", "radiograph_days: '14,six' is not a list of whole days"),
    ("outreach_after_days=40", "outreach_after_days=40: the guideline refuses it: rules: outreach must come before "
                               "escalation"),
    ("screening_days=182,400", "screening_days=182,400: the guideline refuses it"),
    ("review_day=-5", "rules.review_day: value: -5 is outside 0 to 730, the range of day"),
    ("persistent_pain_nrs=60", "rules.persistent_pain_nrs: value: 60 is outside 0 to 10, the range of NRS >="),
    ("osteoporosis_t_score=-9", "rules.osteoporosis_t_score: value: -9 is outside -6 to 4"),
    ("result_overdue_urgent_days=-1", "safety.rules.result_overdue_urgent_days: value: -1 is outside 0 to 730"),
])
def test_a_bad_change_is_a_clear_error_naming_it(definition, text, says):
    with pytest.raises(WhatIfError) as caught:
        apply(definition, [text])
    assert says in str(caught.value)


def test_a_bad_set_or_compare_exits_2_naming_it(tmp_path, capsys):
    assert run_cli(str(MODEL), "--patients", "3", "--set", "no_such_rule=1", "--out", str(tmp_path)) == 2
    assert "unknown rule 'no_such_rule'" in capsys.readouterr().err
    assert run_cli(str(MODEL), "--patients", "3", "--compare", "review_day=400", "--out", str(tmp_path)) == 2
    assert "review_day=400: the guideline refuses it" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_compare_runs_the_same_patients_under_both_definitions(model, definition):
    variant, changes = apply(definition, ["persistent_pain_nrs=7"])
    base = summary(simulate_cohort(model, definition, 2, 40), model, definition, 2, {})
    changed = summary(simulate_cohort(model, variant, 2, 40), model, variant, 2, {"compare": label(changes)})
    table = {row["kind"]: row for row in compare_rows(base, changed)}
    augmentation = table["refer_vertebral_augmentation"]
    assert augmentation["changed_patients"] <= augmentation["current_patients"]
    assert augmentation["patients_difference"] == augmentation["changed_patients"] - augmentation["current_patients"]
    assert table["prescribe_first_line_analgesia"]["patients_difference"] == 0  # the same 40 patients
    assert changed["guideline_version"] == "vcf-1.2+persistent_pain_nrs=7"
    assert changed["what_if"] == {"compare": "persistent_pain_nrs=7"}
    assert set(table) == set(KINDS)


# --- The summary's figures ----------------------------------------------------------------------

def test_the_summary_adds_up_from_the_action_rows(model, definition, tmp_path):
    figures = write(model, definition, tmp_path, 3, 40)
    read = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert read == figures
    rows = list(csv.DictReader((tmp_path / "actions.csv").open(encoding="utf-8")))
    patients = list(csv.DictReader((tmp_path / "patients.csv").open(encoding="utf-8")))
    assert (read["patients"], read["seed"], read["guideline_version"]) == (40, 3, "vcf-1.2")
    assert len(patients) == 40 and set(read["actions"]) == set(KINDS)
    count = Counter(row["kind"] for row in rows)
    having = Counter(kind for kind, _ in {(row["kind"], row["patient"]) for row in rows})
    for kind, stats in read["actions"].items():
        assert stats["count"] == count[kind], kind
        assert stats["patients"] == having[kind], kind
        assert stats["share_of_patients"] == round(having[kind] / 40, 4)
    assert read["actions"]["prescribe_first_line_analgesia"]["share_of_patients"] == 1.0
    assert sum(row["patients"] for row in read["exits"].values()) == 40
    assert Counter(p["status"] for p in patients) == {k: v["patients"] for k, v in read["exits"].items()
                                                      if v["patients"]}
    pt_days = sorted(float(row["day"]) for row in rows if row["kind"] == "refer_physical_therapy")
    assert read["time_to_physical_therapy_days"]["patients"] == len(pt_days)
    assert pt_days[0] <= read["time_to_physical_therapy_days"]["median"] <= pt_days[-1]
    assert read["referrals"]["vertebral_augmentation"]["patients"] == having["refer_vertebral_augmentation"]
    assert read["lost_to_follow_up"]["patients"] == having["escalate_lost_to_follow_up"]
    weekly = list(csv.DictReader((tmp_path / "weekly_demand.csv").open(encoding="utf-8")))
    for kind in ("order_mri", "refer_physical_therapy", "escalate_overdue_result"):
        assert sum(int(week[kind]) for week in weekly) == count[kind]
    assert [float(row["day"]) for row in rows if row["patient"] == "pt-000000"] == \
        sorted(float(row["day"]) for row in rows if row["patient"] == "pt-000000")


# --- Towards the workflow ------------------------------------------------------------------------

def test_patients_become_valid_scenarios_and_a_choice_covers_the_action_kinds(model, definition):
    results = simulate_cohort(model, definition, 2, 40)
    chosen = choose((r.run for r in results), 20)
    assert len(chosen) == 20 and chosen == sorted(set(chosen))
    assert {kind for i in chosen for _, kind, _, _ in results[i].run.actions} == \
        {kind for r in results for _, kind, _, _ in r.run.actions}
    patient = draw_patient(model, 2, chosen[-1])
    run = run_patient(definition, patient, model.horizon_days, keep_events=True)
    scenario = scenario_of(patient, run, model.horizon_days)
    assert scenario.until_day == model.horizon_days and scenario.patient == patient.enrollment
    assert [(day, event) for day, event in scenario.timed_events()] == run.events
    assert set(ACTION_KINDS) >= {kind for kind, _, _ in keys_of_run(run)}


def test_the_default_output_folder_is_ignored_by_git():
    assert "out/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_the_command_is_registered():
    args = parser().parse_args(["cohort", str(MODEL), "--patients", "5", "--check-temporal", "2"])
    assert args.func is cohort_cli.main and args.check_temporal == 2 and args.changes == []
    assert Path(args.out) == Path("out/cohort")
