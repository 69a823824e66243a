"""``gendistill prior``: train a prior on a dataset (the built-in StyleGAN, or a small diffusers UNet trained
without labels), and measure a prior's quality."""

from __future__ import annotations

import argparse

from gendistill.cli.common import add_dataset_args, add_precision_arg, dataset_from_args, positive_int, took
from gendistill.errors import UserError
from gendistill.io import write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prior",
        help="train or assess a generative prior",
        description="Train the built-in class-conditional StyleGAN, or measure a prior.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = actions.add_parser(
        "train",
        help="train a prior: the built-in StyleGAN, or a diffusion model (resumable)",
        description="Train a prior on a dataset: --kind gan, the class-conditional StyleGAN "
        "(H-GLaD, GLaD, DCGM); --kind diffusion, a diffusers UNet2DConditionModel on the "
        "training images without their labels, conditioned on tokens from an image encoder "
        "trained with it (Diffusion Inversion). Checkpoints and sample grids go to "
        "<out>.partial/ until it finishes.",
    )
    t.add_argument("--kind", default="gan", choices=sorted(KINDS), help="what to train (default: %(default)s)")
    t.add_argument("--out", required=True, help="folder for the trained prior")
    t.add_argument("--steps", type=positive_int, help="training steps (default: gan 4000, diffusion 20000)")
    t.add_argument("--batch", type=positive_int, help="images per step (default: gan 32, diffusion 128)")
    t.add_argument(
        "--channel-base",
        type=positive_int,
        help="gan: channels at resolution r: base // r, capped at --channel-max (G and D; default: 512)",
    )
    t.add_argument("--channel-max", type=positive_int, help="gan: the channel cap (default: 64)")
    t.add_argument("--z-dim", type=positive_int, help="gan: size of the latent z (default: 64)")
    t.add_argument("--w-dim", type=positive_int, help="gan: size of the style code w (default: 128)")
    t.add_argument("--mapping-layers", type=positive_int, help="gan: layers of the mapping network z -> w (default: 4)")
    t.add_argument(
        "--channels",
        type=_channels,
        help="diffusion: the UNet's channels per level, comma-separated (default: 32,64,64)",
    )
    t.add_argument("--tokens", type=positive_int, help="diffusion: conditioning tokens (default: 5)")
    t.add_argument("--width", type=positive_int, help="diffusion: cross-attention width (default: 64)")
    t.add_argument("--lr", type=float, help="learning rate (default: gan 2e-3, diffusion 5e-4)")
    t.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints (gan 250, diffusion 500)")
    t.add_argument("--sample-every", type=positive_int, help="steps between sample grids (gan 500, diffusion 1000)")
    t.add_argument("--fp16", action="store_true", help="store the weights in float16 (half the size)")
    t.add_argument("--resume", action="store_true", help="continue from <out>.partial/")
    t.add_argument("--force", action="store_true", help="replace --out and any partial run")
    add_precision_arg(t)
    _common(t)
    t.set_defaults(run=train)
    e = actions.add_parser(
        "eval",
        help="a prior's sample accuracy and Fréchet distance under a real-data ConvNet",
        description="Judge a prior by a ConvNet-3 trained on real data.",
    )
    e.add_argument("prior", help="a shipped prior's name, a saved prior folder, or an NVlabs .pkl")
    e.add_argument("--classifier-epochs", type=positive_int, default=2)
    e.add_argument("--per-class", type=positive_int, default=1000, help="samples per class")
    e.add_argument("--json", help="also write the figures to this JSON file")
    e.add_argument("--code-dir")
    e.add_argument("--trust-pickle", action="store_true")
    _common(e)
    e.set_defaults(run=evaluate)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    add_dataset_args(p)


def _channels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if len(values) < 2 or min(values) < 8 or any(v % 8 for v in values):
        raise argparse.ArgumentTypeError(f"need two or more levels, each a multiple of 8, got {text!r}")
    return values


def _given(args: argparse.Namespace, *names: str) -> dict:
    """The options the user set (the recipe's dataclass defaults serve for the rest)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


KINDS = ("gan", "diffusion")
GAN_ONLY = ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max")
DIFFUSION_ONLY = ("channels", "tokens", "width")


def _refuse_other_kind(args: argparse.Namespace) -> None:
    """Options of the other kind of prior are an error, not silently ignored."""
    other = "diffusion" if args.kind == "gan" else "gan"
    given = [name for name in (DIFFUSION_ONLY if other == "diffusion" else GAN_ONLY) if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UserError(f"{flags} shape(s) a {other} prior, not --kind {args.kind}; drop it, or pass --kind {other}")


def train(args: argparse.Namespace) -> int:
    from gendistill.priors.fit import train_prior

    _refuse_other_kind(args)
    shape = _given(args, *(GAN_ONLY if args.kind == "gan" else DIFFUSION_ONLY))
    if "channels" in shape:
        shape["block_channels"] = shape.pop("channels")
    trained = train_prior(
        dataset_from_args(args),
        args.out,
        args.kind,
        shape=shape,
        recipe=_given(args, "steps", "batch", "lr", "checkpoint_every", "sample_every"),
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        fp16=args.fp16,
        resume=args.resume,
        force=args.force,
        progress=not args.quiet,
    )
    time = took(args, trained.seconds, "training")
    print(f"wrote {trained.path} ({trained.steps} steps, {time}; samples in {trained.path / 'samples'})")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from gendistill.evaluate.prior_quality import diffusion_quality, prior_quality
    from gendistill.priors import check_diffusion_fits, check_fits, load_prior
    from gendistill.report import render_table
    from gendistill.runtime import pick_device

    dataset = dataset_from_args(args)
    device = pick_device(args.device)
    prior = load_prior(args.prior, args.code_dir, args.trust_pickle, dataset.image_size)
    if getattr(prior, "prior_family", None) == "diffusion":  # label-free: unconditional samples, reconstructions
        check_diffusion_fits(prior, dataset)
        prior = prior.to(device)
        samples = args.per_class * dataset.num_classes
        q = diffusion_quality(prior, dataset, args.classifier_epochs, samples, args.seed, device)
    else:
        prior = prior.to(device)
        check_fits(prior, dataset)
        q = prior_quality(prior, dataset, args.classifier_epochs, args.per_class, args.seed, device)
    print(render_table([{k: f"{v:.4f}" if isinstance(v, float) else v for k, v in q.items()}]))
    if args.json:
        write_json(args.json, q)
    return 0
