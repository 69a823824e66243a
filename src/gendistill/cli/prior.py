"""``gendistill prior``: train a prior on a dataset (the built-in StyleGAN, or a small diffusers UNet trained
without labels), and measure a prior's quality."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from gendistill.cli.common import add_dataset_args, add_precision_arg, dataset_from_args, positive_int, runtime, took
from gendistill.cli.flags import add_config_flags, flag_of, given
from gendistill.errors import UserError
from gendistill.io import check_writable, write_json


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
    recipes = _recipe_classes()
    add_config_flags(t, recipes, skip=NOT_FLAGS, labels=dict(zip(recipes, ("gan", "gan", "diffusion"))))
    t.add_argument("--fp16", action="store_true", help="store the weights in float16 (half the size)")
    t.add_argument("--resume", action="store_true", help="continue from <out>.partial/")
    t.add_argument("--force", action="store_true", help="replace --out and any partial run")
    add_precision_arg(t)
    _common(t)
    t.set_defaults(run=train)
    e = actions.add_parser(
        "eval",
        help="a prior's scores: sample accuracy, FD, precision/recall, CAS",
        description="Judge a prior by a ConvNet-3 trained on real data: the accuracy of that network on the "
        "prior's samples, the Fréchet distance and the precision and recall of samples and test images in its "
        "features; with --cas, the Classification Accuracy Score (fresh ConvNet-3s trained on N samples per "
        "class, tested on real images, beside N real images per class).",
    )
    e.add_argument("prior", help="a shipped prior's name, a saved prior folder, or an NVlabs .pkl")
    e.add_argument("--classifier-epochs", type=positive_int, default=2)
    e.add_argument("--per-class", type=positive_int, default=1000, help="samples per class")
    e.add_argument(
        "--cas",
        type=_per_class_list,
        default=(),
        metavar="N[,N...]",
        help="CAS at these samples per class, e.g. 10,100 (class-conditional priors; trains 2 x --cas-runs "
        "networks per N)",
    )
    e.add_argument("--cas-runs", type=positive_int, default=3, help="networks per CAS figure (default: 3)")
    e.add_argument("--cas-epochs", type=positive_int, help="epochs of each CAS network (default: the paper's 300)")
    e.add_argument("--json", help="also write the figures to this JSON file")
    e.add_argument(
        "--record", action="store_true", help="store the scores in the prior folder's config.json, under quality"
    )
    e.add_argument("--code-dir")
    e.add_argument("--trust-pickle", action="store_true")
    _common(e)
    e.set_defaults(run=evaluate)


def _per_class_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"each N must be at least 1, got {text!r}")
    return values


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    add_dataset_args(p)


KINDS = ("gan", "diffusion")
# fields set by the data (the StyleGAN's classes and size) or by an option of another shape (--channels)
NOT_FLAGS = ("num_classes", "image_size", "image_channels")


def _recipe_classes() -> list[type]:
    from gendistill.priors.diffusion_train import DiffusionRecipe
    from gendistill.priors.stylegan import StyleGANConfig
    from gendistill.priors.train import GanRecipe

    return [StyleGANConfig, GanRecipe, DiffusionRecipe]


def _kind_fields() -> dict[str, set[str]]:
    """Each kind's flags (by field name); those of one kind only are refused with the other."""
    gan_shape, gan, diffusion = ({f.name for f in fields(c)} - set(NOT_FLAGS) for c in _recipe_classes())
    return {"gan": gan_shape | gan, "diffusion": diffusion, "gan_shape": gan_shape}


def _refuse_other_kind(args: argparse.Namespace) -> None:
    """Options of the other kind of prior are an error, not silently ignored."""
    kinds = _kind_fields()
    other = "diffusion" if args.kind == "gan" else "gan"
    only_other = sorted(kinds[other] - kinds[args.kind])
    given_ = [name for name in only_other if getattr(args, name, None) is not None]
    if given_:
        flags = ", ".join(flag_of(name, _recipe_classes()) for name in given_)
        raise UserError(f"{flags} shape(s) a {other} prior, not --kind {args.kind}; drop it, or pass --kind {other}")


def train(args: argparse.Namespace) -> int:
    from gendistill.priors.fit import train_prior

    _refuse_other_kind(args)
    kinds = _kind_fields()
    if args.kind == "gan":
        shape = given(args, kinds["gan_shape"])
        recipe = given(args, kinds["gan"] - kinds["gan_shape"])
    else:
        shape = given(args, ("tokens", "width", "block_channels"))
        recipe = given(args, kinds["diffusion"] - set(shape))
    trained = train_prior(
        dataset_from_args(args),
        args.out,
        args.kind,
        shape=shape,
        recipe=recipe,
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

    folder = _recordable(args.prior) if args.record else None
    if args.json:
        check_writable(args.json)
    dataset = dataset_from_args(args)
    device = runtime(args).device
    prior = load_prior(args.prior, args.code_dir, args.trust_pickle, dataset.image_size)
    if getattr(prior, "prior_family", None) == "diffusion":  # label-free: unconditional samples, reconstructions
        if args.cas:
            raise UserError("--cas needs a class-conditional prior; this diffusion prior was trained without labels")
        check_diffusion_fits(prior, dataset)
        prior = prior.to(device)
        samples = args.per_class * dataset.num_classes
        q = diffusion_quality(prior, dataset, args.classifier_epochs, samples, args.seed, device)
    else:
        prior = prior.to(device)
        check_fits(prior, dataset)
        cas = {"cas_per_class": args.cas, "cas_runs": args.cas_runs, "cas_epochs": args.cas_epochs}
        q = prior_quality(prior, dataset, args.classifier_epochs, args.per_class, args.seed, device, **cas)
    flat = {k: v for k, v in q.items() if not isinstance(v, dict)}
    print(render_table([{k: f"{v:.4f}" if isinstance(v, float) else v for k, v in flat.items()}]))
    scores = [(k, v) for k, v in q.items() if isinstance(v, dict)]
    if scores:
        print(render_table([_cas_row(k, v) for k, v in scores]))
    if args.json:
        write_json(args.json, q)
    if folder is not None:
        record_quality(folder, {**q, "dataset": dataset.name})
        print(f"recorded under quality in {folder / 'config.json'}")
    return 0


def _cas_row(name: str, score: dict) -> dict:
    def pct(part: dict) -> str:
        return f"{100 * part['mean']:.2f} ± {100 * part['std']:.2f}"

    return {"score": name, "generated %": pct(score["generated"]), "real %": pct(score["real"]), "runs": score["runs"]}


def _recordable(spec: str) -> Path:
    """A prior folder this user can write the scores into (not a shipped prior or a pickle), checked first."""
    from gendistill.priors import shipped

    folder = Path(spec)
    if spec in shipped() or not folder.is_dir():
        raise UserError(f"--record writes into a prior folder; {spec} is not one (use --json FILE instead)")
    check_writable(folder / "config.json")
    return folder


def record_quality(folder: Path, quality: dict) -> None:
    """The scores into the prior's config.json under ``quality`` (written atomically; the weights untouched)."""
    config = json.loads((folder / "config.json").read_text())
    write_json(folder / "config.json", {**config, "quality": quality})
