"""Run a suite: make each cell's training data once, evaluate it under each protocol, append every result to
the store as it lands. A cell (or one protocol's evaluation of it) whose key is in the store is skipped, so
a killed run resumes where it stopped: a distillation cut off midway continues from its checkpoints.

Each distillation runs in a fresh worker process (``isolate=True``) so that its peak memory is its own:
resident memory from the operating system, and on CUDA the allocator's peak.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gendistill.artifacts import load
from gendistill.bench.builders import builder_for, check_cell, training_data
from gendistill.bench.imports import import_results
from gendistill.bench.provenance import stamp
from gendistill.bench.store import ResultStore
from gendistill.bench.suite import Budget, Cell, Suite
from gendistill.data import ImageDataset, load_dataset
from gendistill.errors import UserError
from gendistill.evaluate import evaluate
from gendistill.evaluate.recipe import PRESETS
from gendistill.version import __version__

Echo = Callable[[str], None]


def cell_from_dict(d: dict) -> Cell:
    d = dict(d)
    d["budget"] = Budget(**d["budget"])
    d["protocols"], d["models"] = tuple(d["protocols"]), tuple(d["models"])
    return Cell(**d)


def _comparable(config: dict) -> dict:
    """A cell's config without its protocols: adding a protocol to a suite is not a changed cell."""
    plain = json.loads(json.dumps(config, default=str))  # as stored: tuples become lists
    return {k: v for k, v in plain.items() if k != "protocols"}


def check_unchanged(suite: Suite, store: ResultStore) -> None:
    """Refuse, before any work, a cell whose config differs from the one stored under its name."""
    for cell in suite.cells:
        old = store.find("cell", suite=suite.name, name=cell.name)
        if old is not None and _comparable(old["config"]) != _comparable(cell.config()):
            new, was = _comparable(cell.config()), _comparable(old["config"])
            changed = sorted(k for k in new if was.get(k) != new[k])
            raise UserError(
                f"cell {cell.name!r} of suite {suite.name!r} changed ({', '.join(changed)}) since "
                f"{store.path} recorded it; give the changed cell a new name to keep both"
            )


def committed_record(cell: Cell, store: ResultStore) -> dict | None:
    """The imported record that stands for ``cell`` (its ``committed: FILE:KEY``), once the store holds it."""
    if cell.committed is None:
        return None
    source, key = cell.committed.split(":", 1)
    return store.find("imported", source=source, key=key)


def _peak_memory() -> dict:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"peak_rss_mb": round(rss / 1024, 1)}
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _build(cell: Cell, data_dir: str | None, out: Path, progress: bool = False) -> dict:
    dataset = load_dataset(cell.dataset, data_dir, seed=0)
    t0 = time.perf_counter()
    info = builder_for(cell.method)(cell, dataset, out, progress)
    return {**info, "build_seconds": round(time.perf_counter() - t0, 2)}


def exit_with_parent(parent: int, every: float = 2.0) -> None:
    """End this process once ``parent`` is gone. A bench killed by SIGTERM or SIGKILL gets no chance to
    stop its worker, which would otherwise distil on for nobody (and hold the cores of the rerun); its
    checkpoints stay (they are written atomically), so the next run resumes from them. On Linux the kernel
    kills the worker with its parent (``PR_SET_PDEATHSIG``); the polling thread covers other systems."""
    _die_with_parent()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _die_with_parent() -> None:
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG


def adopt(cell: Cell, out: Path) -> dict | None:
    """What the store records of a cell whose artifact was written whole but never recorded (the bench was
    killed between the two), when the artifact is the cell's own; None when there is none to adopt. Its
    folder name carries the cell's key, so an artifact there was made from this cell's config. Peak memory
    is not known for it (the worker that measured it is gone)."""
    if cell.method == "full" or not (out / "config.json").is_file():
        return None
    try:
        artifact = load(out)
    except UserError:
        return None
    if (artifact.meta.get("ipc"), artifact.meta.get("seed", cell.seed)) != (cell.ipc, cell.seed):
        return None
    hist = artifact.meta.get("history") or {}
    return {
        "distill_seconds": hist.get("distill_seconds", artifact.meta.get("generate_seconds")),
        "iterations": len(hist.get("loss", [])),
        "stored_bytes": artifact.storage_bytes(),
        "adopted": True,
    }


def _isolated_entry(fn: Callable, args: tuple, kwargs: dict, queue: multiprocessing.Queue, parent: int) -> None:
    exit_with_parent(parent)
    try:
        queue.put(("ok", (fn(*args, **kwargs), _peak_memory())))
    except UserError as e:
        queue.put(("user", str(e)))
    except BaseException as e:  # reported by the parent in one line; the traceback is printed here
        import traceback

        traceback.print_exc()
        queue.put(("crash", f"{type(e).__name__}: {e}"))


def isolated(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
    """``fn(*args, **kwargs)`` in a fresh process (spawned: no torch state shared with this one), and that
    process's peak memory: resident memory from the operating system, and on CUDA the allocator's peak.
    The one place a measured run is spawned: suites' cells and the benchmark scripts call it. ``fn`` must be
    importable by name (a module-level function); an interrupted caller stops the worker, and a worker
    outlives no caller (``exit_with_parent``)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_isolated_entry, args=(fn, args, kwargs, queue, os.getpid()), daemon=False)
    proc.start()
    result = None
    try:
        while result is None:
            try:
                result = queue.get(timeout=1.0)
            except Exception:  # queue.Empty: still working, unless the worker died without a word
                if not proc.is_alive():
                    break
    finally:  # an interrupted caller stops its worker too (its checkpoints stay for the rerun)
        if result is None and proc.is_alive():
            proc.terminate()
        proc.join()
    if result is None:
        raise RuntimeError(f"its worker process died (exit code {proc.exitcode}); run it again to resume")
    status, payload = result
    if status == "user":
        raise UserError(payload)
    if status == "crash":
        raise RuntimeError(f"its worker failed ({payload}); the traceback is above")
    return payload


def _build_from_dict(config: dict, data_dir: str | None, out: str, progress: bool) -> dict:
    return _build(cell_from_dict(config), data_dir, Path(out), progress)


def build_isolated(cell: Cell, data_dir: str | None, out: Path, progress: bool = False) -> dict:
    """``_build`` in a fresh process, with that process's peak memory."""
    config = {**dataclasses.asdict(cell), "name": cell.name}
    try:
        info, peak = isolated(_build_from_dict, config, data_dir, str(out), progress)
    except UserError as e:
        raise UserError(f"cell {cell.name}: {e}") from None
    except RuntimeError as e:
        raise RuntimeError(f"cell {cell.name}: {e}") from None
    return {**info, **peak}


@dataclasses.dataclass
class _Eta:
    total: int
    done: int = 0
    seconds: float = 0.0

    def line(self, name: str, took: float) -> str:
        self.done += 1
        self.seconds += took
        left = self.total - self.done
        eta = f", ~{self.seconds / self.done * left / 60:.1f} min left" if left else ""
        return f"[bench] {self.done}/{self.total} cells done ({name}: {took:.0f} s), {left} left{eta}"


def _evaluate(
    cell: Cell,
    protocol: str,
    data,
    meta: dict,
    dataset: ImageDataset,
    device: str | None,
    progress: bool = False,
) -> dict:
    augment = meta.get("eval_augment", "dsa") if cell.augment == "method" else cell.augment
    runs = cell.runs or PRESETS.get(protocol).runs
    epochs = cell.budget.epochs if cell.method == "full" else cell.eval_epochs
    t0 = time.perf_counter()
    report = evaluate(
        data,
        dataset,
        models=list(cell.models),
        runs=runs,
        preset=protocol,
        augment=augment,
        seed=cell.seed,
        device=device,
        epochs=epochs,
        progress=progress,
    )
    report.stored_bytes = meta.get("storage_bytes")
    return {"report": report.to_dict(), "wall_s": round(time.perf_counter() - t0, 2)}


def run_suite(
    suite: Suite,
    store: ResultStore,
    workdir: str | os.PathLike,
    *,
    device: str | None = None,
    isolate: bool = True,
    only: list[str] | None = None,
    echo: Echo | None = None,
    progress: bool = False,
) -> int:
    """Run what the store does not hold yet; return the number of results appended.

    ``workdir`` keeps each cell's artifact (``<workdir>/<suite>/<cell>-<key>``), so later protocols and the
    report's image grids reuse it. ``only``: cell names to run (the rest are left as they are). ``progress``:
    the distillations' and evaluations' progress bars on stderr (lines every 30 s in a log file).
    """
    echo = echo or (lambda line: print(line, flush=True))
    check_unchanged(suite, store)
    for cell in suite.cells:  # every cell checked before the first one runs
        check_cell(cell)
    for name in only or ():
        suite.cell(name)
    added = import_results(suite, store)
    chosen = [c for c in suite.cells if not only or c.name in only]
    cells = [c for c in chosen if committed_record(c, store) is None]
    held = len(chosen) - len(cells)
    pending = {c.name: [p for p in c.protocols if store.find("eval", key=c.eval_key(p)) is None] for c in cells}
    todo = [c for c in cells if pending[c.name] or store.find("cell", key=c.key(), name=c.name) is None]
    committed = f" ({held} by committed results)" if held else ""
    echo(
        f"[bench] suite {suite.name}: {len(chosen)} cells, {len(chosen) - len(todo)} done{committed}, "
        f"{len(todo)} to run"
    )
    eta, datasets = _Eta(len(todo)), {}
    for cell in todo:
        t0 = time.perf_counter()
        out = Path(workdir) / suite.name / f"{cell.name}-{cell.key()}"
        record = store.find("cell", key=cell.key(), name=cell.name)
        needs_files = cell.method != "full" and not (out / "config.json").is_file()
        if record is None or needs_files:
            info = adopt(cell, out) if record is None else None
            if info is not None:
                echo(
                    f"[bench] {cell.name}: adopting the finished set in {out} (its run ended before the store "
                    "recorded it)"
                )
            else:
                echo(f"[bench] {cell.name}: making its set ({cell.method}, budget {cell.budget_label()})")
                if isolate:
                    info = build_isolated(cell, suite.data_dir, out, progress)
                else:
                    info = {**_build(cell, suite.data_dir, out, progress), **_peak_memory()}
            if record is None:
                record = store.append(
                    {
                        "type": "cell",
                        "suite": suite.name,
                        "name": cell.name,
                        "key": cell.key(),
                        "method": cell.method,
                        "dataset": cell.dataset,
                        "ipc": cell.ipc,
                        "seed": cell.seed,
                        "budget": dataclasses.asdict(cell.budget),
                        "config": cell.config(),
                        "code_version": __version__,
                        "artifact": str(out) if cell.method != "full" else None,
                        "wall_s": round(time.perf_counter() - t0, 2),
                        **info,
                        **stamp(),
                    }
                )
                added += 1
        if cell.dataset not in datasets:
            datasets[cell.dataset] = load_dataset(cell.dataset, suite.data_dir, seed=0)
        dataset = datasets[cell.dataset]
        data, meta = training_data(cell, dataset, out)
        for protocol in pending[cell.name]:
            result = _evaluate(cell, protocol, data, meta, dataset, device, progress)
            r = result["report"]["results"]
            accs = ", ".join(f"{x['model']} {100 * x['mean']:.2f} ± {100 * x['std']:.2f}" for x in r)
            echo(f"[bench] {cell.name} under {protocol}: {accs}")
            store.append(
                {
                    "type": "eval",
                    "suite": suite.name,
                    "name": cell.name,
                    "cell_key": cell.key(),
                    "key": cell.eval_key(protocol),
                    "protocol": protocol,
                    **result,
                    **stamp(),
                }
            )
            added += 1
        echo(eta.line(cell.name, time.perf_counter() - t0))
    sys.stdout.flush()
    return added
