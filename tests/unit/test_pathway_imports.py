"""``pathway/`` stays pure: it imports the standard library, pydantic and itself, nothing else.

The workflow passes ``pathway`` through the Temporal sandbox, and the sandbox does not check what
a passed-through module imports; this test is the guard (no Temporal, no I/O clients, no API code).
"""

from __future__ import annotations

import ast
import sys

from tests.helpers import ROOT

PATHWAY = ROOT / "pathway"
ALLOWED = {"pathway", "__future__", "pydantic"} | set(sys.stdlib_module_names)


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module a file imports, at any depth (relative imports are its own package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_pathway_imports_only_the_standard_library_and_pydantic():
    files = sorted(PATHWAY.rglob("*.py"))
    assert len(files) >= 5, files
    foreign = {f"{path.relative_to(ROOT)}: {name}"
               for path in files for name in imported_modules(path.read_text(encoding="utf-8")) - ALLOWED}
    assert not foreign, sorted(foreign)


def test_the_guard_sees_imports_anywhere_in_a_file():
    source = "import os.path\nfrom pydantic import BaseModel\nfrom . import facts\n" \
             "def f():\n    import temporalio.workflow\n    from structlog import get_logger\n"
    assert imported_modules(source) == {"os", "pydantic", "temporalio", "structlog"}
