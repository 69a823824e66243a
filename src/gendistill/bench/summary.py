"""The store's results as rows: one per (cell, protocol, network), with DD-Ranking's scores where the store
holds their references, and one per imported network result.

IOR needs the random subset of the same dataset, IPC, network and protocol; HLR needs full real data
(a ``full`` cell) under a hard-label protocol and the set's own hard-label accuracy (its figure under the
same protocol when that one uses hard labels, else under the first hard-label protocol it was evaluated
with). A score whose reference is missing is left empty, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gendistill.bench.imports import describe_entry
from gendistill.bench.store import ResultStore
from gendistill.evaluate.ranking import ranking_scores
from gendistill.evaluate.recipe import PRESETS


@dataclass
class Row:
    suite: str
    name: str
    method: str
    dataset: str
    ipc: int | None
    protocol: str
    model: str
    mean: float  # fraction
    std: float
    runs: int
    budget: str = ""
    distill_seconds: float | None = None
    iterations: int | None = None
    stored_bytes: int | None = None
    peak_rss_mb: float | None = None
    machine: str = ""
    commit: str = ""
    source: str = "bench"  # bench, or the imported results file
    ior: float | None = None
    hlr: float | None = None
    score: float | None = None
    grid: str | None = None  # the cell's artifact grid, when it has one
    settings: dict = field(default_factory=dict)

    @property
    def anchor(self) -> str:
        return "".join(ch if ch.isalnum() else "-" for ch in f"{self.source}-{self.suite}-{self.name}")


def _machine(m: dict) -> str:
    if not m:
        return ""
    what = m.get("gpu") or m.get("cpu", "")
    return f"{what}, {m.get('threads', '?')} threads" if not m.get("gpu") else what


def _is_hard(protocol: str) -> bool:
    return protocol not in PRESETS or PRESETS.get(protocol).labels == "hard"


def newest(records: list[dict], *fields: str) -> list[dict]:
    """The newest record per value of ``fields`` (a re-run replaces, the store keeps both)."""
    out: dict[tuple, dict] = {}
    for r in records:
        out[tuple(r.get(f) for f in fields)] = r
    return list(out.values())


def bench_rows(store: ResultStore) -> list[Row]:
    cells = {(r["suite"], r["name"], r["key"]): r for r in store.records("cell")}
    rows = []
    for ev in newest(store.records("eval"), "suite", "name", "protocol"):
        cell = cells.get((ev["suite"], ev["name"], ev["cell_key"]))
        if cell is None:
            continue
        budget = cell.get("budget") or {}
        label = "+".join(
            f"{v:g}{u}" for k, u in (("iterations", "it"), ("minutes", "min"), ("epochs", "ep")) if (v := budget.get(k))
        )
        label = label or ("" if cell["method"] in ("random", "herding") else "paper")
        for res in ev["report"]["results"]:
            rows.append(
                Row(
                    ev["suite"],
                    ev["name"],
                    cell["method"],
                    cell["dataset"],
                    cell.get("ipc"),
                    ev["protocol"],
                    res["model"],
                    res["mean"],
                    res["std"],
                    len(res["accuracies"]),
                    label,
                    cell.get("distill_seconds"),
                    cell.get("iterations"),
                    cell.get("stored_bytes"),
                    cell.get("peak_rss_mb"),
                    _machine(ev.get("machine", {})),
                    ev.get("commit", ""),
                    grid=cell.get("artifact"),
                    settings={
                        "cell": cell["config"],
                        "recipe": res.get("recipe"),
                        "teacher": ev["report"].get("teacher"),
                        "accuracies": res["accuracies"],
                        "key": cell["key"],
                        "eval_key": ev["key"],
                    },
                )
            )
    _score(rows)
    return rows


def _score(rows: list[Row]) -> None:
    def find(suite: str, **match: object) -> Row | None:
        """A reference row, from the same suite when it has one."""
        hits = [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]
        return next((r for r in hits if r.suite == suite), hits[0] if hits else None)

    for r in rows:
        if r.method in ("random", "full"):
            continue
        rnd = find(r.suite, method="random", dataset=r.dataset, ipc=r.ipc, protocol=r.protocol, model=r.model)
        hard = (
            r
            if _is_hard(r.protocol)
            else next(
                (
                    o
                    for o in rows
                    if o.suite == r.suite and o.name == r.name and o.model == r.model and _is_hard(o.protocol)
                ),
                None,
            )
        )
        fulls = [
            o
            for o in rows
            if o.method == "full" and o.dataset == r.dataset and o.model == r.model and _is_hard(o.protocol)
        ]
        # the closest full-data figure: same suite and protocol, then same suite, then same protocol
        full = min(fulls, key=lambda o: (o.suite != r.suite, o.protocol != r.protocol), default=None)
        if rnd is not None:
            r.ior = r.mean - rnd.mean
        if full is not None and hard is not None:
            r.hlr = full.mean - hard.mean
        if rnd is not None and full is not None and hard is not None:
            r.score = ranking_scores(r.mean, rnd.mean, full.mean, hard.mean).score


def _entry_reports(entry: dict) -> list[dict]:
    """The evaluation reports an imported entry holds: ``report``, or the latent study's ``convnet`` and
    ``cross`` (ConvNet-3 and the cross-architecture networks of one set)."""
    found = [entry.get(k) for k in ("report", "convnet", "cross")]
    return [r for r in found if isinstance(r, dict) and "results" in r]


def imported_rows(store: ResultStore) -> list[Row]:
    rows = []
    for rec in newest(store.records("imported"), "source", "key"):
        entry = rec["entry"]
        what = describe_entry(rec["key"], entry, rec["source"])  # read afresh: descriptions improve over time
        extra = {k: v for k, v in entry.items() if k not in ("report", "convnet", "cross", "machine")}
        for report in _entry_reports(entry):
            for res in report["results"]:
                rows.append(
                    Row(
                        rec["source"].removesuffix(".json"),
                        rec["key"],
                        what["method"],
                        report.get("dataset", ""),
                        what["ipc"],
                        report.get("preset", ""),
                        res["model"],
                        res["mean"],
                        res["std"],
                        len(res["accuracies"]),
                        f"{entry['budget_minutes']:g}min" if entry.get("budget_minutes") else "",
                        entry.get("distill_seconds"),
                        entry.get("iterations"),
                        report.get("stored_bytes"),
                        machine=_machine(entry.get("machine", {})),
                        commit=entry.get("commit", ""),
                        source=rec["source"],
                        settings={
                            "entry": extra,
                            "recipe": res.get("recipe"),
                            "accuracies": res["accuracies"],
                            "inferred": what["inferred"],
                        },
                    )
                )
    return rows
