"""``gendistill evaluate DIR``: train fresh networks on an artifact, test on real data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gendistill.artifacts import load
from gendistill.cli.common import add_dataset_args, add_runtime_args, artifact_dataset, positive_int, print_report
from gendistill.errors import UserError
from gendistill.evaluate import PRESETS, evaluate
from gendistill.evaluate.mixtures import MIXES, fixed_steps, mix
from gendistill.evaluate.readings import READINGS, describe, training_data
from gendistill.evaluate.recipe import TrainRecipe
from gendistill.io import check_writable, write_json
from gendistill.models import POOLS

RESULTS_FILE = "eval.json"


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
    artifact = load(args.artifact)
    check_writable(Path(args.artifact) / RESULTS_FILE)  # before the training, not after it
    data, label = training_data(artifact, args.reading, args.ipc, args.seed)
    dataset = artifact_dataset(args, artifact, artifact.training_set())
    augment = artifact.meta.get("eval_augment", "dsa") if args.augment == "auto" else args.augment
    epochs = args.epochs
    if args.train_on or args.steps:
        if args.reading != "fixed":
            raise UserError("--train-on and --steps train on a fixed set; drop --reading")
        data = mix(data, dataset, args.train_on) if args.train_on else data
        label.update({"train_on": args.train_on, "images": len(data)})
        if args.steps:
            if args.epochs:
                raise UserError("--steps replaces the preset's epochs; pass one of --steps and --epochs")
            data, epochs = fixed_steps(data, TrainRecipe.batch_size, args.seed), args.steps
            label["steps"] = args.steps
    report = evaluate(
        data,
        dataset,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        runs=args.runs,
        preset=args.preset,
        augment=augment,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        compile=False if args.no_compile else "auto",
        split=args.split,
        epochs=epochs,
        progress=not args.quiet,
        per_arch=not args.same_recipe,
    )
    report.stored_bytes = artifact.storage_bytes()
    report.reading = describe(label, report.stored_bytes, dataset)
    print_report(report)
    path = Path(args.artifact) / RESULTS_FILE
    history = json.loads(path.read_text()) if path.is_file() else []
    write_json(path, [*history, report.to_dict()])
    print(f"saved to {path}")
    return 0
