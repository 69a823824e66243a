"""Fill the README's result tables from what is committed, or check that they are current.

    python benchmarks/update_readme.py           # rewrite README.md
    python benchmarks/update_readme.py --check   # exit 1 when README.md or the store lag behind

A marker pair ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->`` receives ``results/NAME.md`` without
its title line; ``<!-- store:SUITE -->`` ... ``<!-- /store:SUITE -->`` receives the table of that suite's
cells rendered from the result store (``results/store.jsonl``, see ``gendistill bench``). ``--check`` also
fails when a committed ``results/*.json`` entry is missing from the store (run
``gendistill bench benchmarks/suites/committed.yaml`` to import it), so every number in the README can be
traced to a store record.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STORE = RESULTS / "store.jsonl"


def _replace(text: str, kind: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {kind}:{re.escape(name)} -->\n).*?(<!-- /{kind}:{re.escape(name)} -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def suite_table(suite: str) -> str:
    from gendistill.bench import ResultStore
    from gendistill.bench.page import table_rows
    from gendistill.bench.summary import bench_rows
    from gendistill.report import render_table

    rows = [r for r in bench_rows(ResultStore(STORE)) if r.suite == suite]
    rows.sort(key=lambda r: (r.protocol, r.method != "full", r.method != "random", r.method, r.ipc or 0))
    return render_table(table_rows(rows), markdown=True) if rows else "(no results in the store yet)"


def render(text: str) -> str:
    for table in sorted(RESULTS.glob("*.md")):
        body = "\n".join(line for line in table.read_text().splitlines() if not line.startswith("# ")).strip()
        text = _replace(text, "results", table.stem, body)
    for suite in re.findall(r"<!-- store:([\w-]+) -->", text):
        text = _replace(text, "store", suite, suite_table(suite))
    return text


def missing_from_store() -> list[str]:
    """``file:key`` of committed entries the store has not imported (or holds an older version of)."""
    imported = {}
    for line in STORE.read_text().splitlines() if STORE.is_file() else []:
        if line.strip():
            r = json.loads(line)
            if r.get("type") == "imported":
                imported[(r["source"], r["key"])] = r["entry"].get("finished")
    missing = []
    for path in sorted(RESULTS.glob("*.json")):
        for key, entry in json.loads(path.read_text()).get("entries", {}).items():
            if isinstance(entry, dict) and imported.get((path.name, key), "absent") != entry.get("finished"):
                missing.append(f"{path.name}:{key}")
    return missing


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = render(text)
    if not args.check:
        readme.write_text(new)
        return 0
    problems = (
        ["README.md's tables differ from the results: run python benchmarks/update_readme.py"] if new != text else []
    )
    missing = missing_from_store()
    if missing:
        problems.append(
            f"{len(missing)} committed result(s) not in the store (e.g. {missing[0]}): run "
            "gendistill bench benchmarks/suites/committed.yaml"
        )
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
