"""Shared plumbing of the benchmark scripts: resumable JSON results and their Markdown tables."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from gendistill.artifacts import make_meta
from gendistill.bench.provenance import stamp
from gendistill.io import partial_dir, write_json
from gendistill.methods import RunOptions, distill
from gendistill.report import render_table

RESULTS = Path(__file__).parent / "results"
RUNS = Path(__file__).parent / "runs"  # the scripts' artifacts (not committed)


def bf16_flags() -> list[str]:
    """The CPU's bf16 and AMX flags, recorded beside every precision figure: what ``auto`` decided from."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def is_artifact(path: Path) -> bool:
    """A finished artifact folder, in either store format (config.json now, meta.json before)."""
    return (path / "config.json").is_file() or (path / "meta.json").is_file()


class ResultBook:
    """``name -> record`` in one JSON file, written after every entry so a killed run loses one entry at most."""

    def __init__(self, name: str) -> None:
        self.path = RESULTS / f"{name}.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {"entries": {}}

    def done(self, key: str) -> bool:
        return key in self.data["entries"]

    def todo(self, key: str, only: list[str] | None) -> bool:
        """Not yet recorded, and selected by ``--only`` when that is given: by the key itself or by a prefix that
        ends at a dash (``dsa-ipc10`` selects ``dsa-ipc10-cross`` but ``dsa-ipc1`` does not select ``dsa-ipc10``)."""
        return not self.done(key) and (not only or any(key == o or key.startswith(o + "-") for o in only))

    def add(self, key: str, record: dict) -> None:
        """Record one entry. Two benchmark processes may share a book (evaluations of different cells run side
        by side): under an exclusive lock, the file is re-read so the other's entries since are kept, not
        overwritten by this process's older copy."""
        record = {**record, **stamp()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.is_file():
                self.data = json.loads(self.path.read_text())
            self.data["entries"][key] = record
            write_json(self.path, self.data)

    def write_table(
        self, rows: list[dict], title: str, command: str, notes: tuple[str, ...] = (), stem: str | None = None
    ) -> None:
        """``results/<stem>.md`` (default: the book's own name; a book may render several tables)."""
        text = f"# {title}\n\nReproduce: `{command}`\n\n{render_table(rows, markdown=True)}\n"
        text += "".join(f"\n{note}\n" for note in notes)
        (RESULTS / f"{stem or self.path.stem}.md").write_text(text)


def network_cell(result: dict) -> str:
    """One network's stored result as ``mean ± std``, marked when some of its runs ended near chance."""
    runs = len(result["accuracies"])
    text = f"{100 * result['mean']:.1f}" + (f" ± {100 * result['std']:.1f}" if runs > 1 else " (1 run)")
    flagged = result.get("near_chance") or []
    return text + (f" ({len(flagged)} near chance)" if flagged else "")


def over_networks(report: dict) -> tuple[float, float]:
    """(mean over networks, std over runs of that mean) of a stored cross-architecture report."""
    if "over_networks" in report:
        return report["over_networks"]["mean"], report["over_networks"]["std"]
    results = report["results"]  # written before the spread was stored: single runs, no spread
    return sum(r["mean"] for r in results) / len(results), 0.0


def val_search(
    book: ResultBook,
    prefix: str,
    values: Sequence,
    distill_one: Callable[[object], tuple[Path, dict]],
    dataset,
    only: list[str] | None = None,
    epochs: int = 300,
):
    """Distil briefly with each value, score each set on the validation split (never the test split; one
    ``epochs``-epoch DSA training), record ``<prefix>-<value>`` and return the best value.

    ``distill_one(value)`` distils (resumably) and returns the artifact's folder and what to record of it."""
    from gendistill import load
    from gendistill.evaluate import evaluate

    for v in values:
        key = f"{prefix}-{v}"
        if book.todo(key, only):
            out, record = distill_one(v)
            rep = evaluate(load(out), dataset, runs=1, augment="dsa", epochs=epochs, split="val", progress=False)
            book.add(key, {"val_acc": rep.results[0].mean, "value": v, **record})
            print(f"{key}: val {100 * rep.results[0].mean:.2f}", flush=True)
    scores = {r["value"]: r["val_acc"] for k, r in book.data["entries"].items() if k.startswith(prefix + "-")}
    return max(scores, key=scores.get) if scores else values[0]


def snapshot_dir(out: Path, minutes: float) -> Path:
    """Where ``distill_for`` writes the set of run ``out`` as it was after ``minutes``."""
    return out.with_name(f"{out.name}-{minutes:g}min")


def distill_for(
    dataset, method: str, ipc: int, out: Path, minutes: float, snapshots: tuple[int, ...] = (), param=None, **options
) -> Path:
    """``method`` at ``ipc`` for ``minutes`` of distillation compute on this machine (resumable), writing
    the set as it was after each of ``snapshots`` minutes beside ``out`` as ``<out>-<m>min``; ``param``: the
    parameterisation's config (default: the method's own)."""
    if is_artifact(out):
        return out

    def snapshot(done: int, params, history) -> bool:
        for m in snapshots:
            path = snapshot_dir(out, m)
            if history.seconds >= 60 * m and not path.exists():
                config = {"snapshot_iteration": done, "seconds": history.seconds, "precision": run.precision}
                meta = make_meta(method, dataset, ipc, config, 0)
                params.to_image_set(meta).save(path)
        return history.seconds >= 60 * minutes

    partial = partial_dir(out)
    # entries without a precision were distilled in fp32: that stays the default here
    run = RunOptions(iterations=1_000_000, checkpoint_every=5, compile=True, **{"precision": "fp32", **options})
    distill(dataset, method, ipc, out, param, run, resume=partial.exists(), on_iteration=snapshot)
    return out
