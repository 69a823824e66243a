"""Arguments shared by several subcommands, and turning them into library objects."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from gendistill.artifacts import Artifact, ImageSet, check_dataset, check_fits, load
from gendistill.data import DATASETS, ImageDataset, load_dataset
from gendistill.errors import UserError
from gendistill.evaluate import EvalReport
from gendistill.report import render_table
from gendistill.runtime import Runtime

logger = logging.getLogger(__name__)


def runtime(args: argparse.Namespace) -> Runtime:
    """The command's device and precision, resolved once (``--device``, ``--precision``)."""
    return Runtime.resolve(getattr(args, "device", None), getattr(args, "precision", None) or "auto")


def took(args: argparse.Namespace, work: float, what: str) -> str:
    """``work`` seconds of ``what`` (summed over resumed sessions), and this command's own wall time, which
    also counts loading, setup, teachers, sample grids and checkpoints."""
    wall = time.perf_counter() - getattr(args, "started", time.perf_counter())
    return f"{work:.0f} s of {what}, {wall:.0f} s for this command in all"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_set_args(p: argparse.ArgumentParser, methods: list[str]) -> None:
    """What every command that writes a synthetic set takes: how, how many, where."""
    p.add_argument("--method", required=True, choices=methods)
    p.add_argument("--ipc", required=True, type=int, help="images per class")
    p.add_argument("--out", required=True, help="artifact folder to create")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")


def add_dataset_args(p: argparse.ArgumentParser, default: str | None = "fashion-mnist") -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=default, help=f"one of {', '.join(DATASETS.names())} (default: %(default)s)")
    g.add_argument("--data-dir", help="folder holding the dataset files (searched before the default places)")
    g.add_argument(
        "--val-fraction", type=float, default=0.05, help="share of each training class held out for validation"
    )
    g.add_argument("--image-size", type=int, help="imagefolder only: resize images to this many pixels a side")


def add_precision_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto: bf16 autocast where the hardware runs it fast (CUDA, AMX, AVX512-BF16), else fp32",
    )


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: %(default)s)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    add_precision_arg(g)
    g.add_argument("--no-compile", action="store_true", help="do not torch.compile the training networks")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def dataset_from_args(args: argparse.Namespace, name: str | None = None) -> ImageDataset:
    name = name or args.dataset
    if name is None:
        raise UserError("no dataset given; pass --dataset")
    options = {}
    if getattr(args, "image_size", None) is not None:
        if name != "imagefolder":
            raise UserError("--image-size applies to --dataset imagefolder only")
        options["image_size"] = args.image_size
    return load_dataset(name, args.data_dir, val_fraction=args.val_fraction, seed=args.seed, **options)


def dataset_of_artifact(args: argparse.Namespace, meta: dict) -> ImageDataset:
    """The dataset an artifact was made from: ``--dataset``/``--data-dir`` when given, else the recorded name
    and folder; when that folder is gone, the usual search, and failing that one line naming the folder."""
    name = args.dataset or meta.get("dataset")
    recorded = (meta.get("dataset_identity") or {}).get("source")
    same = args.dataset is None or args.dataset == meta.get("dataset")
    if args.data_dir is not None or not same or not recorded:
        return dataset_from_args(args, name)
    if Path(recorded).is_dir():
        return dataset_from_args(argparse.Namespace(**{**vars(args), "data_dir": recorded}), name)
    gone = UserError(
        f"the artifact was made from {name} in {recorded}, which is gone; pass --data-dir with the "
        "folder the dataset is in now"
    )
    try:
        dataset = dataset_from_args(args, name)
    except UserError:
        raise gone from None
    fingerprint = meta["dataset_identity"].get("fingerprint")
    if fingerprint and fingerprint != dataset.fingerprint():  # another copy was found, with other contents
        raise gone
    return dataset


def artifact_images(args: argparse.Namespace) -> tuple[Artifact, ImageSet, ImageDataset]:
    """Load ``args.artifact`` (any kind), the fixed image set it trains with, and its own dataset, checked."""
    artifact = load(args.artifact)
    images = artifact.training_set()
    return artifact, images, artifact_dataset(args, artifact, images)


def artifact_dataset(args: argparse.Namespace, artifact: Artifact, images: ImageSet) -> ImageDataset:
    """The artifact's own dataset, checked against its fixed image set ``images``."""
    dataset = dataset_of_artifact(args, artifact.meta)
    check_fits(images, dataset)  # a shape that cannot fit is an error even when --dataset was given
    check_dataset(artifact.meta, dataset, explicit=args.dataset is not None)
    return dataset


def print_report(report: EvalReport) -> None:
    """What was trained on (for a model), the table, then one warning line per run that ended near chance."""
    if report.reading:
        print(report.reading)
    if report.teacher:
        t = report.teacher
        print(
            f"soft labels from a teacher: {t['model']}, {t['epochs']} epochs on the training split, "
            f"{100 * t['test_acc']:.2f}% test accuracy (cached)"
        )
    print(render_table(report.rows()))
    for line in report.warnings():
        logger.warning(line)
