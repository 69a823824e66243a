"""``gendistill evaluate DIR``: train fresh networks on an artifact, test on real data."""

from __future__ import annotations

import argparse
from pathlib import Path

from gendistill.cli.common import add_dataset_args, add_runtime_args, dataset_of_artifact, positive_int, print_report
from gendistill.evaluate import PRESETS, RESULTS_FILE, evaluate_artifact
from gendistill.evaluate.mixtures import MIXES
from gendistill.evaluate.readings import READINGS
from gendistill.models import POOLS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="train fresh networks on a synthetic set and report test accuracy",
        description="The field's evaluation protocol on an artifact folder.",
    )
    p.add_argument("artifact", help="artifact folder")
    p.add_argument(
        "--models",
        default="convnet",
        help="comma-separated, e.g. convnet,resnet18,vgg11,alexnet,vit; "
        "'cross' names the field's unseen networks (" + ",".join(POOLS.get("cross")) + ")",
    )
    p.add_argument(
        "--same-recipe",
        action="store_true",
        help="train every network with the preset as is, without the per-architecture departures",
    )
    p.add_argument("--runs", type=positive_int, default=3, help="fresh networks per model (default: %(default)s)")
    p.add_argument(
        "--preset",
        default="paper",
        choices=PRESETS.names(),
        help="; ".join(f"{n}: {PRESETS.get(n).description}" for n in PRESETS.names()),
    )
    p.add_argument(
        "--augment",
        default="auto",
        help="auto (what the method recommends), none, dsa, or a DSA strategy like color_crop_cutout",
    )
    p.add_argument("--epochs", type=positive_int, help="override the preset's epochs")
    p.add_argument("--split", default="test", choices=["test", "val"], help="test on the real test or validation split")
    p.add_argument(
        "--reading",
        default="fixed",
        choices=READINGS,
        help="generator sets: fixed (a): one set sampled once, the primary number; fresh (b): new "
        "class-balanced samples every epoch, the same iterations",
    )
    p.add_argument("--ipc", type=positive_int, help="generator sets: sample this IPC (default: the stored one)")
    p.add_argument(
        "--train-on",
        choices=MIXES,
        help="sets from gendistill generate: train on the generated images, the real images they were "
        "made from, or both (see --steps)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        help="a fixed budget of SGD steps (full batches from a seeded shuffle stream) instead of the "
        "preset's epochs, so a larger set is not given more steps",
    )
    add_dataset_args(p, default=None)
    add_runtime_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = evaluate_artifact(
        args.artifact,
        lambda meta: dataset_of_artifact(args, meta),
        reading=args.reading,
        ipc=args.ipc,
        train_on=args.train_on,
        steps=args.steps,
        epochs=args.epochs,
        augment=args.augment,
        seed=args.seed,
        other_dataset=args.dataset is not None,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        runs=args.runs,
        preset=args.preset,
        device=args.device,
        precision=args.precision,
        compile=False if args.no_compile else "auto",
        split=args.split,
        progress=not args.quiet,
        per_arch=not args.same_recipe,
    )
    print_report(report)
    print(f"saved to {Path(args.artifact) / RESULTS_FILE}")
    return 0
