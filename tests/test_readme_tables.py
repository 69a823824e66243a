"""The README's result tables are generated (benchmarks/update_readme.py): this fails when they drift from
the committed results or when the store lacks a committed result."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "benchmarks" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_are_current() -> None:
    text = (ROOT / "README.md").read_text()
    assert _script().render(text) == text, "README tables drifted: run python benchmarks/update_readme.py"


def test_every_committed_result_is_in_the_store() -> None:
    missing = _script().missing_from_store()
    assert not missing, f"not imported: {missing[:5]}; run gendistill bench benchmarks/suites/committed.yaml"
