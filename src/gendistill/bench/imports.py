"""Results committed before the store existed (``benchmarks/results/NAME.json``, written by the
``benchmarks/run_*.py`` scripts), carried into the store as they are: imported, never recomputed.

An entry becomes one ``imported`` record with its source file, key and the entry itself. An entry is
imported again only when it changed (its ``finished`` stamp differs), so re-running a suite is idempotent.
What the entry was is what it records: its ``method`` and ``ipc`` fields (every committed entry has them),
the protocol and dataset of its report; keys are names, never parsed.
"""

from __future__ import annotations

import json
from pathlib import Path

from gendistill.bench.store import ResultStore
from gendistill.errors import UserError


def describe_entry(key: str, entry: dict, source: str = "") -> dict:
    """Method, IPC, protocol and dataset of an imported entry, as it records them; an entry that names no
    method is described by its file's name (``source``), marked ``inferred``."""
    report = next((entry[k] for k in ("report", "convnet") if isinstance(entry.get(k), dict)), {})
    return {
        "method": entry.get("method") or source.removesuffix(".json") or key,
        "ipc": entry.get("ipc"),
        "protocol": report.get("preset"),
        "dataset": report.get("dataset"),
        "inferred": "method" not in entry,
    }


def import_file(path: Path, store: ResultStore) -> int:
    try:
        entries = json.loads(path.read_text())["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"cannot import {path}: not a results file with an 'entries' mapping") from None
    known = {(r["source"], r["key"]): r.get("entry", {}).get("finished") for r in store.records("imported")}
    added = 0
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        if (path.name, key) in known and known[(path.name, key)] == entry.get("finished"):
            continue
        store.append(
            {
                "type": "imported",
                "source": path.name,
                "key": key,
                **describe_entry(key, entry, path.name),
                "entry": entry,
            }
        )
        added += 1
    return added


def import_results(suite, store: ResultStore) -> int:
    return sum(import_file(p, store) for p in suite.imports)
