"""``gendistill generate``: new training images from an embedding set (Diffusion Inversion's sampling)."""

from __future__ import annotations

import argparse

from gendistill.cli.common import add_precision_arg, positive_int


def _unit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {value}")
    return value


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
    p.add_argument("--per-image", type=positive_int, help="variants per inverted image (default: 5)")
    p.add_argument(
        "--ipc", type=positive_int, help="instead: this many images per class from class-level conditionings (--modes)"
    )
    p.add_argument(
        "--modes",
        choices=["kmeans", "mean"],
        help="with --ipc: k-means modes of each class's embeddings (default), or the class mean",
    )
    p.add_argument("--noise", type=_unit, default=0.1, help="std of the Gaussian noise on each embedding")
    p.add_argument("--interp", type=_unit, default=0.1, help="interpolation toward a same-class partner")
    p.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale (1: none)")
    p.add_argument(
        "--uncond",
        default="mean",
        choices=["mean", "null"],
        help="unconditional branch: the mean embedding (default) or the null conditioning",
    )
    p.add_argument("--steps", type=positive_int, default=20, help="sampler steps (default: %(default)s)")
    p.add_argument(
        "--scheduler", default="dpm", choices=["dpm", "ddim"], help="dpm: DPM-Solver++ (2nd order); ddim: DDIM, eta 0"
    )
    p.add_argument(
        "--size",
        type=positive_int,
        help="sampling resolution in px (default: the dataset's); the output is always resized to the dataset's",
    )
    p.add_argument("--batch", type=positive_int, default=100, help="images per sampling pass (memory only)")
    p.add_argument("--prior", help="the prior's folder, if it moved since the inversion")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--trust-pickle", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    add_precision_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gendistill.artifacts import EmbeddingSet, load
    from gendistill.distill import distributed as dd
    from gendistill.errors import UserError, an
    from gendistill.inversion import GenerateConfig, generate
    from gendistill.io import check_new_dir
    from gendistill.priors import load_prior, require
    from gendistill.priors.families import CONDITIONINGS
    from gendistill.runtime import pick_device, resolve_precision

    if args.ipc is None and args.modes is not None:
        raise UserError("--modes chooses the class-level conditionings of --ipc; pass --ipc N with it, or drop it")
    if args.ipc is not None and args.per_image is not None:
        raise UserError("--per-image and --ipc are two ways to say how many images; pass one of them")
    config = GenerateConfig(
        per_image=args.per_image or 5,
        noise=args.noise,
        interp=args.interp,
        guidance=args.guidance,
        uncond=args.uncond,
        steps=args.steps,
        scheduler=args.scheduler,
        seed=args.seed,
        batch=args.batch,
        size=args.size,
        ipc=args.ipc,
        modes=args.modes or "kmeans",
    )
    config.check()
    check_new_dir(args.out, args.force, create_parents=True)
    embeddings = load(args.embeddings)
    if not isinstance(embeddings, EmbeddingSet):
        raise UserError(
            f"{args.embeddings} is {an(embeddings.class_name)}, not an embedding set; make one with gendistill invert"
        )
    folder = embeddings.check_prior(args.prior)
    rank, size = dd.world()
    device = dd.local_device(pick_device(args.device))
    prior = load_prior(folder, trust_pickle=args.trust_pickle)
    require(prior, CONDITIONINGS, "generate")
    images = generate(
        prior.to(device), embeddings, config, resolve_precision(args.precision, device), progress=not args.quiet
    )
    if rank == 0:
        images.save(args.out, force=args.force)
        m = images.meta
        print(f"wrote {args.out} ({len(images)} images, {m['images_per_second']:.1f} images/s)")
    if size > 1:
        dd.finish()
    return 0
