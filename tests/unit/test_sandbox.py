"""The workflow sandbox runs its entry code compiled once per process (``worker.sandbox``): the
same code, through the SDK's own path — a test here fails if that path changes shape."""

from __future__ import annotations

import inspect

from temporalio.worker.workflow_sandbox._runner import _Instance

from worker import sandbox
from worker.runtime import sandbox_runner
from workflows.patient_pathway import PatientPathwayWorkflow


def test_a_source_is_compiled_once_and_runs_as_exec_would():
    source = "answer = base * 2\n"
    first = sandbox.compiled(source)
    assert sandbox.compiled(source) is first
    by_code: dict[str, object] = {"base": 21}
    by_text: dict[str, object] = {"base": 21}
    exec(first, by_code)  # what the sandbox does with it
    exec(source, by_text)
    assert by_code["answer"] == by_text["answer"] == 42


def test_the_sdk_still_enters_the_sandbox_through_run_code():
    parameters = list(inspect.signature(_Instance._run_code).parameters.values())
    assert [p.name for p in parameters[:2]] == ["self", "code"]
    assert parameters[2].kind is inspect.Parameter.VAR_KEYWORD


async def test_workers_and_tests_build_pathways_through_the_compiled_entry():
    for runner in (sandbox_runner(), sandbox_runner(isolated=True)):
        assert isinstance(runner, sandbox.CompiledSandboxRunner)
    sandbox._COMPILED.clear()
    # As a worker does at start (on its event loop): one sandboxed instance of the workflow.
    sandbox_runner(isolated=True).prepare_workflow(PatientPathwayWorkflow.__temporal_workflow_definition)  # type: ignore[attr-defined]
    entered = list(sandbox._COMPILED)
    assert any("InSandbox(" in source for source in entered)
    assert any("PatientPathwayWorkflow as __temporal_workflow_class" in source for source in entered)
