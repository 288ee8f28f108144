"""The workflow sandbox, with the code it runs on every activation compiled once per process.

The SDK's sandbox enters a workflow by executing a few fixed lines of Python source: one to
activate it, and one or two for every payload it encodes or decodes (to ask the workflow for its
serialization context). ``exec`` of a source string compiles it each time — measured on
``make bench``'s burst of events, about a sixth of the worker's CPU. Here each distinct source
is compiled once and its code object executed: the same code, in the same sandbox, with the same
restrictions.

This reaches into the sandbox's instance class (``_Instance._run_code``), which the SDK calls
unstable; ``tests/unit/test_sandbox.py`` fails if that method goes away or changes shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import CodeType
from typing import Any

from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

_COMPILED: dict[str, CodeType] = {}


def compiled(source: str) -> CodeType:
    """The code object of ``source``, compiled on first use (as ``exec`` would compile it)."""
    code = _COMPILED.get(source)
    if code is None:
        code = _COMPILED[source] = compile(source, "<string>", "exec")
    return code


class _CompiledInstance(_Instance):
    def _run_code(self, code: str, **extra_globals: Any) -> None:
        super()._run_code(compiled(code), **extra_globals)  # type: ignore[arg-type]  # exec takes either


@dataclass(frozen=True)
class CompiledSandboxRunner(SandboxedWorkflowRunner):
    """:class:`SandboxedWorkflowRunner` whose entry code is compiled once per process."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """Implements :py:meth:`WorkflowRunner.create_instance`."""
        return _CompiledInstance(det, self.runner_class, self.restrictions)
