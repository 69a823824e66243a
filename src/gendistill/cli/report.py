"""``gendistill report``: a result store as a static HTML page, plots, image grids and markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

from gendistill.bench.page import write_report
from gendistill.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="render a result store as an HTML page (and markdown) with tables, plots and grids",
        description="Render STORE (from 'gendistill bench') into the folder --out: index.html, report.md, plots "
        "and image grids. Viewing it needs no server and no network.",
    )
    p.add_argument("store", help="a result store (.jsonl)")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--title", default="gendistill results")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not Path(args.store).is_file():
        raise UserError(f"store {args.store} does not exist; run 'gendistill bench SUITE.yaml' to make one")
    out = write_report(args.store, args.out, force=args.force, title=args.title)
    print(f"report: {out / 'index.html'}")
    return 0
