"""``gendistill experts``: train expert trajectories for MTT (resumable per expert)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gendistill.cli.common import add_dataset_args, add_precision_arg, dataset_from_args, positive_int, runtime
from gendistill.experts import ExpertSpec, train_experts
from gendistill.io import check_writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experts",
        help="train expert trajectories on real data for MTT",
        description="Train networks on the training split and save their parameters after every epoch.",
    )
    p.add_argument("--out", required=True, help="trajectory folder (re-running continues where it stopped)")
    p.add_argument("--num", type=positive_int, default=5, help="number of experts (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=15, help="epochs per expert (default: %(default)s)")
    p.add_argument("--model", default="convnet")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--no-augment", action="store_true", help="train experts without DSA augmentation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    add_precision_arg(p)
    add_dataset_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_writable(Path(args.out) / "x")
    dataset = dataset_from_args(args)
    spec = ExpertSpec(
        dataset.name, args.model, epochs=args.epochs, lr=args.lr, augment=not args.no_augment, seed=args.seed
    )
    rt = runtime(args)
    out = train_experts(dataset, Path(args.out), args.num, spec, progress=not args.quiet, amp=rt.amp, device=rt.device)
    print(f"wrote {args.num} expert trajectories of {args.epochs} epochs to {out}")
    return 0
