"""``gendistill select``: a real-subset baseline (random or herding) written as an artifact."""

from __future__ import annotations

import argparse

from gendistill.cli.common import add_dataset_args, add_set_args, dataset_from_args, positive_int, runtime
from gendistill.evaluate.baselines import SELECTORS, check_ipc, select, selector_settings
from gendistill.io import check_new_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "select",
        help="pick a random or herding subset of real images as a baseline set",
        description="Write a baseline synthetic set made of real training images.",
    )
    add_set_args(p, SELECTORS.names())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--features",
        choices=["trained", "random", "pixels"],
        help="herding: feature space (a ConvNet trained on the training split, a random one, or pixels; "
        "default: trained)",
    )
    p.add_argument("--feature-epochs", type=positive_int, help="herding: epochs of the feature network (default: 2)")
    p.add_argument("--device", default="auto", help="herding: where the feature network trains (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_dataset_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = check_new_dir(args.out, args.force, create_parents=True)  # before loading anything: write nothing
    given = {"features": args.features, "feature_epochs": args.feature_epochs}
    options = selector_settings(
        args.method, SELECTORS.get(args.method), {k: v for k, v in given.items() if v is not None}
    )
    dataset = dataset_from_args(args)
    check_ipc(dataset, args.ipc)
    synthetic = select(dataset, args.method, args.ipc, seed=args.seed, device=runtime(args).device, **options)
    synthetic.save(out, force=args.force)
    print(f"wrote {out} ({len(synthetic)} images, {args.method}, ipc {args.ipc}, {dataset.name})")
    return 0
