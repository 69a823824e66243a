"""The benchmarks' result book: two processes sharing one results file keep each other's entries."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _common(monkeypatch, tmp_path: Path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_common_under_test", ROOT / "benchmarks" / "common.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def test_two_books_on_one_file_keep_both_entries(monkeypatch, tmp_path: Path) -> None:
    common = _common(monkeypatch, tmp_path)
    first, second = common.ResultBook("shared"), common.ResultBook("shared")  # both read the empty state
    first.add("cell-a", {"acc": 0.5})
    second.add("cell-b", {"acc": 0.6})  # its copy predates cell-a: it must not drop it
    first.add("cell-c", {"acc": 0.7})
    entries = json.loads((tmp_path / "shared.json").read_text())["entries"]
    assert sorted(entries) == ["cell-a", "cell-b", "cell-c"]
    assert entries["cell-b"]["acc"] == 0.6
    assert second.done("cell-a") and first.done("cell-b")
