"""Arguments shared by several subcommands, and turning them into library objects."""

from __future__ import annotations

import argparse

from gendistill.data import DATASETS, ImageDataset, load_dataset
from gendistill.errors import UserError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
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


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: %(default)s)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: bf16 autocast where the hardware runs it natively (CUDA, AMX), else fp32")  # fmt: skip
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
