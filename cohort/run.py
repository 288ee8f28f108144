"""A cohort run: N synthetic patients through the pure core, on every core.

Patients are handed to worker processes in chunks of consecutive indexes and the results merged in
patient order, so the output does not depend on the number of workers. Each patient draws from its
own random stream (see :mod:`cohort.patients`), so the same seed gives the same patients.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cohort.engine import PatientRun, run_patient
from cohort.model import CohortModel
from cohort.patients import Patient, draw_patient
from pathway.guideline import PathwayDefinition


@dataclass
class PatientResult:
    """One patient: who they were (what the summary and plots need) and what the pathway did."""

    id: str
    enrolled_on: int
    fracture_level: str
    height_loss_pct: float
    pain_nrs: int
    onset_days: int
    red_flags: list[str]
    non_responder: bool
    first_mri: str
    dropped_out: bool
    new_fracture: bool
    run: PatientRun


def simulate_patient(model: CohortModel, defn: PathwayDefinition, seed: int, index: int) -> PatientResult:
    """Draw the ``index``-th patient and drive it through the pathway."""
    patient = draw_patient(model, seed, index)
    return _result(patient, run_patient(defn, patient, model.horizon_days))


def _result(p: Patient, run: PatientRun) -> PatientResult:
    e = p.enrollment
    return PatientResult(id=e.id, enrolled_on=p.enrolled_on, fracture_level=e.fracture_level,
                         height_loss_pct=e.height_loss_pct, pain_nrs=e.pain_nrs,
                         onset_days=e.onset_days_before_enrollment, red_flags=list(e.red_flags),
                         non_responder=p.non_responder, first_mri=p.first_mri,
                         dropped_out=p.dropout_day <= p.model.horizon_days,
                         new_fracture=p.new_fracture_day is not None, run=run)


# What each worker process works with (set once per process by the pool's initializer).
_job: tuple[CohortModel, PathwayDefinition, int] | None = None


def _init(model: CohortModel, defn: PathwayDefinition, seed: int) -> None:
    global _job
    _job = (model, defn, seed)


def _chunk(bounds: tuple[int, int]) -> list[PatientResult]:
    assert _job is not None
    model, defn, seed = _job
    return [simulate_patient(model, defn, seed, i) for i in range(*bounds)]


def chunks(patients: int, workers: int) -> list[tuple[int, int]]:
    """Consecutive index ranges: small enough to balance the workers and move the progress bar."""
    size = max(1, min(200, patients // max(1, workers * 16)))
    return [(start, min(patients, start + size)) for start in range(0, patients, size)]


def simulate_cohort(model: CohortModel, defn: PathwayDefinition, seed: int, patients: int, workers: int = 1,
                    progress: Callable[[int], None] | None = None) -> list[PatientResult]:
    """Every patient ``0 .. patients-1``, in patient order; ``progress(n)`` after each n more."""
    return list(iter_cohort(model, defn, seed, patients, workers, progress))


def iter_cohort(model: CohortModel, defn: PathwayDefinition, seed: int, patients: int, workers: int = 1,
                progress: Callable[[int], None] | None = None) -> Iterator[PatientResult]:
    """As :func:`simulate_cohort`, one patient at a time."""
    parts = chunks(patients, workers)
    if workers <= 1 or patients < 2:
        for start, stop in parts:
            for i in range(start, stop):
                yield simulate_patient(model, defn, seed, i)
            if progress:
                progress(stop - start)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    with multiprocessing.get_context(method).Pool(workers, initializer=_init, initargs=(model, defn, seed)) as pool:
        for part in pool.imap(_chunk, parts):
            yield from part
            if progress:
                progress(len(part))
        pool.close()
        pool.join()  # reaped workers count in this process's children's CPU time


def cpu_seconds() -> float:
    """CPU time of this process and its reaped worker processes so far (user and system)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
