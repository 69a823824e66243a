"""``gendistill full-data``: the upper bound, training on the whole training split with a stated budget."""

from __future__ import annotations

import argparse

from gendistill.artifacts import ImageSet
from gendistill.cli.common import add_dataset_args, add_runtime_args, dataset_from_args, positive_int, print_report
from gendistill.evaluate import evaluate
from gendistill.io import check_writable, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "full-data",
        help="train on the whole training split (the accuracy upper bound)",
        description="Train fresh networks on all training images for a stated number of epochs.",
    )
    p.add_argument("--epochs", type=positive_int, default=20, help="the budget (default: %(default)s)")
    p.add_argument("--models", default="convnet")
    p.add_argument("--runs", type=positive_int, default=1)
    p.add_argument("--augment", default="none", help="none, dsa or a DSA strategy")
    p.add_argument("--json", help="also write the report to this JSON file")
    add_dataset_args(p)
    add_runtime_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_writable(args.json)
    dataset = dataset_from_args(args)
    full = ImageSet(dataset.train_images, dataset.train_labels)
    report = evaluate(
        full,
        dataset,
        models=args.models.split(","),
        runs=args.runs,
        augment=args.augment,
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        compile=False if args.no_compile else "auto",
        progress=not args.quiet,
    )
    print_report(report)
    if args.json:
        write_json(args.json, report.to_dict())
    return 0
