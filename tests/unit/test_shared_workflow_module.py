"""A workflow module that workers share between pathways (``SHARED_WORKFLOW_MODULES``) keeps no
state of its own: one patient's run must never see what another's left behind. The sandbox no
longer imports it afresh for each run, so this test is the guard."""

from __future__ import annotations

import ast
import collections
import importlib
import inspect

import pytest

from worker.runtime import PASSTHROUGH, SHARED_WORKFLOW_MODULES, sandbox_runner

MUTABLE = (list, dict, set, bytearray, collections.deque)


def mutable_globals(module: object) -> list[str]:
    """Module-level names bound to a mutable container."""
    return sorted(name for name, value in vars(module).items()
                  if not name.startswith("__") and isinstance(value, MUTABLE))


def rebinding_statements(source: str) -> list[str]:
    """``global`` statements anywhere in a module: a function that rebinds a module name."""
    return [f"line {node.lineno}: global {', '.join(node.names)}"
            for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Global)]


@pytest.mark.parametrize("name", SHARED_WORKFLOW_MODULES)
def test_a_shared_workflow_module_keeps_no_state(name):
    module = importlib.import_module(name)
    assert mutable_globals(module) == []
    assert rebinding_statements(inspect.getsource(module)) == []


def test_the_guard_sees_module_state():
    class Module:
        pass

    state = Module()
    state.__dict__.update(SEEN=[], LIMIT=3, NAMES=("a",), CACHE={})
    assert mutable_globals(state) == ["CACHE", "SEEN"]
    assert rebinding_statements("N = 0\ndef bump():\n    global N\n    N += 1\n") == ["line 3: global N"]


def test_workers_share_the_workflow_module_and_the_tests_isolate_it():
    shared = sandbox_runner().restrictions.passthrough_modules
    isolated = sandbox_runner(isolated=True).restrictions.passthrough_modules
    assert set(SHARED_WORKFLOW_MODULES) <= shared
    assert not set(SHARED_WORKFLOW_MODULES) & isolated
    assert set(PASSTHROUGH) <= isolated
