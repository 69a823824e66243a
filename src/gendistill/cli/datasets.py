"""``gendistill datasets``: which datasets are available, and where they were found."""

from __future__ import annotations

import argparse

from gendistill.data import DATASETS, locate, search_paths
from gendistill.report import render_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "datasets",
        help="list datasets and where their files were found",
        description="List every registered dataset, whether its files were found, and where.",
    )
    p.add_argument("--data-dir", help="also look in this folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in DATASETS.names():
        where = locate(name, args.data_dir)
        hint = DATASETS.get(name).hint
        rows.append(
            {
                "dataset": name,
                "status": "found" if where else "missing",
                "location": str(where)
                if where
                else f"looked in {len(search_paths(name, args.data_dir))} places; {hint}",
            }
        )
    print(render_table(rows))
    return 0
