"""``gendistill bench``: run a suite of cells into a result store, skipping what the store already holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from gendistill.bench import ResultStore, load_suite, run_suite
from gendistill.bench.runner import committed_record
from gendistill.io import check_writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run a benchmark suite (YAML) into a result store; cached, resumable",
        description="Make and evaluate every cell of SUITE that the store does not hold yet. Each cell is cached "
        "by the hash of its config and the code version; a killed run resumes where it stopped.",
    )
    p.add_argument("suite", help="the suite's YAML file (see benchmarks/suites/)")
    p.add_argument(
        "--store", help="the result store, a .jsonl file (default: SUITE's store: key, else <suite>.jsonl beside it)"
    )
    p.add_argument("--workdir", help="where cells' artifacts go (default: SUITE's workdir: key, else runs/bench)")
    p.add_argument("--only", nargs="+", metavar="CELL", help="run these cells only")
    p.add_argument("--list", action="store_true", help="list the cells and whether the store holds them; run nothing")
    p.add_argument("--report", metavar="DIR", help="then render the store's report into DIR (replacing it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, only a line per cell and protocol")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="distil in this process (no worker per cell; peak memory is then the whole run's)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    store = ResultStore(args.store or suite.store)
    if args.list:
        for cell in suite.cells:
            done = sum(store.find("eval", key=cell.eval_key(p)) is not None for p in cell.protocols)
            held = ""
            if cell.committed:
                held = f"committed: {cell.committed}" + (
                    "" if committed_record(cell, store) else " (run the suite once to import it)"
                )
            status = held or f"{done}/{len(cell.protocols)} protocols in the store"
            print(
                f"{cell.name:32s} {cell.method:8s} ipc {cell.ipc or 'all':>4} budget {cell.budget_label():10s} {status}"
            )
        return 0
    check_writable(store.path)
    check_writable(Path(args.workdir or suite.workdir) / suite.name)
    added = run_suite(
        suite,
        store,
        args.workdir or suite.workdir,
        device=args.device,
        isolate=not args.in_process,
        only=args.only,
        progress=not args.quiet,
    )
    print(f"[bench] {added} new result(s) in {store.path}")
    if args.report:
        from gendistill.bench.page import write_report

        out = write_report(store.path, args.report, force=Path(args.report).is_dir())
        print(f"[bench] report: {out / 'index.html'}")
    return 0
