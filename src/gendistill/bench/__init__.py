"""``gendistill bench``: suites of cells (method x dataset x IPC x seed x budget) evaluated under named
protocols, every result cached by the hash of its config and the code version and kept in one store."""

from gendistill.bench.runner import run_suite
from gendistill.bench.store import ResultStore
from gendistill.bench.suite import Budget, Cell, Suite, load_suite, parse_suite

__all__ = ["Budget", "Cell", "ResultStore", "Suite", "load_suite", "parse_suite", "run_suite"]
