"""``gendistill sample DIR --ipc N --out DIR2``: a fixed image set of any IPC from one stored generator set."""

from __future__ import annotations

import argparse

from gendistill.artifacts import GeneratorSet, load
from gendistill.cli.common import positive_int
from gendistill.errors import UserError, an
from gendistill.io import check_new_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="sample a fixed image set of any IPC from a generator set (dcgm)",
        description="Render IPC images per class from a stored generator and its codes: each class's stored "
        "codes first, then fresh codes from --seed. Writes an image set that evaluate, export and crfd read.",
    )
    p.add_argument("artifact", help="a generator set folder (written by distill --method dcgm)")
    p.add_argument("--ipc", required=True, type=positive_int, help="images per class to sample")
    p.add_argument("--out", required=True, help="image set folder to create")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh codes (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_new_dir(args.out, args.force, create_parents=True)
    artifact = load(args.artifact)
    if not isinstance(artifact, GeneratorSet):
        raise UserError(
            f"{args.artifact} is {an(artifact.class_name)}, a fixed set with nothing to sample from; "
            "sample from a generator set (distill --method dcgm)"
        )
    images = artifact.sample(args.ipc, args.seed)
    images.save(args.out, force=args.force)
    stored = images.meta["sampled_from"]
    print(
        f"wrote {args.out} ({len(images)} images, {args.ipc} per class; {min(args.ipc, stored['stored_ipc'] or 0)} "
        f"per class from stored codes, the rest fresh from seed {args.seed})"
    )
    return 0
