"""``gendistill crfd DIR``: the class-relevant feature distance of a synthetic set (lower is closer)."""

from __future__ import annotations

import argparse
import time

from gendistill.cli.common import add_dataset_args, add_precision_arg, artifact_images, positive_int, runtime


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crfd",
        help="class-relevant feature distance of a synthetic set (H-GLaD's metric)",
        description="CRFD of an artifact against its dataset's real class feature means.",
    )
    p.add_argument("artifact", help="a folder written by select or distill")
    p.add_argument("--nets", type=positive_int, default=4, help="random networks averaged (default: %(default)s)")
    p.add_argument("--real-per-class", type=positive_int, default=256)
    p.add_argument("--model", default="convnet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    add_precision_arg(p)
    add_dataset_args(p, default=None)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gendistill.evaluate.crfd import CRFD

    _, synthetic, dataset = artifact_images(args)
    t0 = time.perf_counter()
    rt = runtime(args)
    crfd = CRFD(dataset, args.model, args.nets, args.real_per_class, args.seed, device=rt.device, amp=rt.amp)
    value = crfd(synthetic.images, synthetic.labels)
    print(f"crfd {value:.6g}  ({args.nets} {args.model} nets, {time.perf_counter() - t0:.1f} s)")
    return 0
