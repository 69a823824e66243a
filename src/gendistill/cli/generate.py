"""``gendistill generate``: new training images from an embedding set (Diffusion Inversion's sampling)."""

from __future__ import annotations

import argparse

from gendistill.cli.common import add_precision_arg, runtime
from gendistill.cli.flags import add_config_flags, config_from
from gendistill.inversion import GenerateConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="sample training images from an embedding set (gendistill invert)",
        description="Per inverted image, --per-image variants: the embedding moved --interp "
        "toward a random same-class partner, plus N(0, --noise^2) noise, sampled with "
        "classifier-free guidance; or, with --ipc, IPC images per class from class-level "
        "conditionings. Writes an image set that evaluate, export and crfd read.",
    )
    p.add_argument("embeddings", help="an embedding set folder (written by gendistill invert)")
    p.add_argument("--out", required=True, help="image set folder to create")
    add_config_flags(p, [GenerateConfig])
    p.add_argument("--prior", help="the prior's folder, if it moved since the inversion")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--trust-pickle", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    add_precision_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gendistill.artifacts import EmbeddingSet, load
    from gendistill.distill import distributed as dd
    from gendistill.errors import UserError, an
    from gendistill.inversion import generate
    from gendistill.io import check_new_dir
    from gendistill.priors import load_prior, require
    from gendistill.priors.families import CONDITIONINGS

    if args.ipc is None and args.modes is not None:
        raise UserError("--modes chooses the class-level conditionings of --ipc; pass --ipc N with it, or drop it")
    if args.ipc is not None and args.per_image is not None:
        raise UserError("--per-image and --ipc are two ways to say how many images; pass one of them")
    config = config_from(args, GenerateConfig)
    config.check()
    check_new_dir(args.out, args.force, create_parents=True)
    embeddings = load(args.embeddings)
    if not isinstance(embeddings, EmbeddingSet):
        raise UserError(
            f"{args.embeddings} is {an(embeddings.class_name)}, not an embedding set; make one with gendistill invert"
        )
    folder = embeddings.check_prior(args.prior)
    rank, size = dd.world()
    rt = runtime(args)
    prior = load_prior(folder, trust_pickle=args.trust_pickle)
    require(prior, CONDITIONINGS, "generate")
    images = generate(prior.to(rt.device), embeddings, config, rt.amp, progress=not args.quiet)
    if rank == 0:
        images.save(args.out, force=args.force)
        m = images.meta
        print(f"wrote {args.out} ({len(images)} images, {m['images_per_second']:.1f} images/s)")
    if size > 1:
        dd.finish()
    return 0
