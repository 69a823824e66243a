"""The generated parts of the README and docs/: lists drawn from the registries and the headline table drawn
from the result store, so neither can drift from the code or the measurements.

A block ``<!-- generated:NAME -->`` ... ``<!-- /generated:NAME -->`` in a Markdown file receives
``BLOCKS[NAME]()``; ``<!-- results:NAME -->`` receives ``benchmarks/results/NAME.md`` without its title, and
``<!-- store:SUITE -->`` the table of that suite's cells in the store. :func:`fill` rewrites every block of a
text and :func:`broken_links` lists the relative links and images of a Markdown file that point nowhere.
``benchmarks/update_readme.py`` applies both to README.md and docs/; a test checks that nothing generated
is stale, that no link is broken, and that every committed result is in the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from gendistill.bench.store import ResultStore
from gendistill.bench.summary import Row, bench_rows, imported_rows
from gendistill.report.table import render_table

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "benchmarks" / "results"
STORE = RESULTS / "store.jsonl"
ARTIFACTS = ROOT / "benchmarks" / "artifacts"  # committed sets behind headline figures, by row anchor

# Published ConvNet-3 test accuracy (%) on Fashion-MNIST at IPC 1 / 10 / 50 and on the full training set,
# as collected in the field's tables (DC, DSA and DM papers); the reference a headline row is read against.
PUBLISHED = {
    "random": {1: 51.4, 10: 73.8, 50: 82.5},
    "herding": {1: 67.0, 10: 71.1, 50: 71.9},
    "dc": {1: 70.5, 10: 82.3, 50: 83.6},
    "dsa": {1: 70.6, 10: 84.6, 50: 88.7},
    "full": {0: 93.5},
}


def _table(rows: list[dict]) -> str:
    return render_table(rows, markdown=True) if rows else "(none)"


def _first_line(obj: object) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else ""


def methods() -> str:
    from gendistill.methods import METHODS

    rows = []
    for name in METHODS.names():
        m = METHODS.get(name)
        regs = ", ".join(f"{r} {w:g}" for r, w in m.regularisers) or "none"
        rows.append(
            {
                "method": name,
                "parameterisation": m.param,
                "objective": m.objective,
                "siamese DSA": "yes" if m.augment else "no",
                "iterations": m.iterations,
                "image lr": f"{m.lr:g}",
                "regularisers": regs,
            }
        )
    return _table(rows)


def parameterisations() -> str:
    from dataclasses import fields

    from gendistill.params import PARAMS

    rows = []
    for name in PARAMS.names():
        cls = PARAMS.get(name)
        rows.append(
            {
                "param": name,
                "what": _first_line(cls),
                "settings": ", ".join(f.name for f in fields(cls.Config)),
            }
        )
    return _table(rows)


def objectives() -> str:
    from dataclasses import fields

    from gendistill.objectives import OBJECTIVES, REGULARISERS

    rows = [
        {
            "objective": name,
            "what": _first_line(OBJECTIVES.get(name)),
            "options (--set)": ", ".join(f.name for f in fields(OBJECTIVES.get(name).Config)) or "none",
        }
        for name in OBJECTIVES.names()
    ]
    rows += [
        {"objective": f"regulariser {name}", "what": _first_line(REGULARISERS.get(name)), "options (--set)": "--reg"}
        for name in REGULARISERS.names()
    ]
    return _table(rows)


def priors() -> str:
    from gendistill.priors import shipped
    from gendistill.priors.families import FAMILIES

    rows = [
        {"prior family": name, "classes": ", ".join(sorted(FAMILIES.get(name).builders))} for name in FAMILIES.names()
    ]
    return _table(rows) + f"\n\nShipped priors: {', '.join(f'`{n}`' for n in shipped()) or 'none'}."


def artifact_kinds() -> str:
    from gendistill.artifacts import KINDS

    return _table([{"artifact kind": name, "what": _first_line(KINDS.get(name))} for name in KINDS.names()])


def protocols() -> str:
    from gendistill.evaluate.recipe import PRESETS

    rows = []
    for name in PRESETS.names():
        p = PRESETS.get(name)
        rows.append(
            {
                "protocol": name,
                "epochs (plain / DSA)": f"{p.epochs_plain} / {p.epochs_augmented}",
                "labels": p.labels,
                "what": p.description,
            }
        )
    return _table(rows)


def datasets() -> str:
    from gendistill.data import DATASETS

    return _table([{"dataset": n, "where the files come from": DATASETS.get(n).hint} for n in DATASETS.names()])


def headline(store: Path = STORE, artifacts: Path = ARTIFACTS, root: Path = ROOT) -> str:
    """Each method's best ConvNet-3 set per IPC under the paper protocol, beside a random real subset of
    the same IPC and the published figure, with its bytes, distillation time and committed artifact."""
    results = ResultStore(store)
    rows = [r for r in bench_rows(results) + imported_rows(results) if _headline(r)]
    best: dict[tuple[str, int], Row] = {}
    for r in rows:
        key = (r.method, r.ipc or 0)
        if key not in best or r.mean > best[key].mean:
            best[key] = r
    random = {ipc: r.mean for (method, ipc), r in best.items() if method == "random"}
    out = []
    for (method, ipc), r in sorted(best.items(), key=lambda kv: (kv[0][1] == 0, kv[0][1], kv[0][0] != "random")):
        folder = artifacts / r.anchor
        link = f"[{r.anchor}]({folder.relative_to(root).as_posix()})" if (folder / "config.json").is_file() else ""
        out.append(
            {
                "method": method if ipc else "full data",
                "IPC": ipc or "all",
                "acc %": f"{100 * r.mean:.2f} ± {100 * r.std:.2f}",
                "random real": f"{100 * random[ipc]:.2f}" if ipc in random else "",
                "published": str(PUBLISHED.get(method if ipc else "full", {}).get(ipc, "")),
                "stored bytes": f"{r.stored_bytes:,}" if r.stored_bytes else "",
                "distill s": f"{r.distill_seconds:.0f}" if r.distill_seconds else "",
                "artifact": link,
            }
        )
    return _table(out)


def _headline(r: Row) -> bool:
    if r.model != "convnet" or r.protocol != "paper" or r.method in ("init", "abl", "eff"):
        return False
    return r.ipc in (1, 10, 50) or (r.method == "full" and r.ipc is None)


def cheatsheet(path: Path = ROOT / "benchmarks" / "results" / "cheatsheet.json") -> str:
    """The command-line cheat sheet with each line's measured time (``benchmarks/cheatsheet.py``)."""
    record = json.loads(path.read_text())
    body = "\n".join(f"{line['command']}  # {_duration(line['seconds'])}" for line in record["lines"])
    m = record["machine"]
    return f"```bash\n{body}\n```\n\nTimed on {m['cpu']}, {m['threads']} threads, at {record['commit']}."


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


BLOCKS: dict[str, Callable[[], str]] = {
    "cheatsheet": cheatsheet,
    "methods": methods,
    "parameterisations": parameterisations,
    "objectives": objectives,
    "priors": priors,
    "artifact-kinds": artifact_kinds,
    "protocols": protocols,
    "datasets": datasets,
    "headline": headline,
}
_BLOCK = re.compile(r"(<!-- generated:([\w-]+) -->\n).*?(<!-- /generated:\2 -->)", re.S)


def fill(text: str, extra: dict[str, Callable[[], str]] | None = None) -> str:
    """``text`` with every generated block rewritten from the code, the results and the store; ``extra``
    adds blocks that layers above this one generate (the command line's flags)."""
    blocks = {**BLOCKS, **(extra or {})}
    text = _BLOCK.sub(lambda m: m.group(1) + blocks[m.group(2)]() + "\n" + m.group(3), text)
    text = _marked("results", text, _results_table)
    return _marked("store", text, suite_table)


def _marked(kind: str, text: str, body: Callable[[str], str]) -> str:
    pattern = re.compile(rf"(<!-- {kind}:([\w-]+) -->\n).*?(<!-- /{kind}:\2 -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + body(m.group(2)) + "\n" + m.group(3), text)


def _results_table(name: str) -> str:
    lines = (RESULTS / f"{name}.md").read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("# ")).strip()


def suite_table(suite: str) -> str:
    from gendistill.bench.page import table_rows

    rows = [r for r in bench_rows(ResultStore(STORE)) if r.suite == suite]
    rows.sort(key=lambda r: (r.protocol, r.method != "full", r.method != "random", r.method, r.ipc or 0))
    return render_table(table_rows(rows), markdown=True) if rows else "(no results in the store yet)"


def doc_files(root: Path = ROOT) -> list[Path]:
    """The Markdown a reader meets: the README and everything under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def missing_from_store(results: Path = RESULTS) -> list[str]:
    """``file:key`` of committed result entries the store has not imported (or holds an older version of),
    so every number in the docs traces to a store record."""
    imported = {}
    for r in ResultStore(results / "store.jsonl").records("imported"):
        imported[(r["source"], r["key"])] = r["entry"].get("finished")
    missing = []
    for path in sorted(results.glob("*.json")):
        entries = json.loads(path.read_text())
        for key, entry in (entries.get("entries", {}) if isinstance(entries, dict) else {}).items():
            if isinstance(entry, dict) and imported.get((path.name, key), "absent") != entry.get("finished"):
                missing.append(f"{path.name}:{key}")
    return missing


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def broken_links(path: Path) -> list[str]:
    """Relative links and images in the Markdown file ``path`` whose target does not exist."""
    bad = []
    for target in _LINK.findall(path.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if file and not (path.parent / file).exists():
            bad.append(f"{path.name}: {target}")
    return bad
