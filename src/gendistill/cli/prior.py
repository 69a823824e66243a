"""``gendistill prior``: train the built-in StyleGAN prior on a dataset, and measure a prior's quality."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from gendistill.cli.common import add_dataset_args, add_precision_arg, dataset_from_args, positive_int
from gendistill.errors import UserError
from gendistill.io import check_new_dir, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prior", help="train or assess a generative prior",
                       description="Train the built-in class-conditional StyleGAN, or measure a prior.")  # fmt: skip
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = actions.add_parser("train", help="train the built-in StyleGAN prior (resumable)",
                           description="Train the built-in class-conditional StyleGAN prior on a dataset; "
                           "checkpoints and sample grids go to <out>.partial/ until it finishes.")  # fmt: skip
    t.add_argument("--out", required=True, help="folder for the trained prior (config.json, model.safetensors)")
    t.add_argument("--steps", type=positive_int, default=4000, help="generator steps (default: %(default)s)")
    t.add_argument("--batch", type=positive_int, default=32)
    t.add_argument("--channel-base", type=positive_int, default=512,
                   help="channels at resolution r: base // r, capped at --channel-max (G and D alike)")  # fmt: skip
    t.add_argument("--channel-max", type=positive_int, default=64)
    t.add_argument("--checkpoint-every", type=positive_int, default=250)
    t.add_argument("--sample-every", type=positive_int, default=500)
    t.add_argument("--fp16", action="store_true", help="store the weights in float16 (half the size)")
    t.add_argument("--resume", action="store_true", help="continue from <out>.partial/")
    t.add_argument("--force", action="store_true", help="replace --out and any partial run")
    add_precision_arg(t)
    _common(t)
    t.set_defaults(run=train)
    e = actions.add_parser("eval", help="a prior's sample accuracy and Fréchet distance under a real-data ConvNet",
                           description="Judge a prior by a ConvNet-3 trained on real data.")  # fmt: skip
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


def train(args: argparse.Namespace) -> int:
    import torch

    from gendistill.priors.stylegan import StyleGANConfig
    from gendistill.priors.train import GanRecipe, GanTrainer
    from gendistill.runtime import pick_device, resolve_precision

    out = Path(args.out)
    partial = out.with_name(out.name + ".partial")
    check_new_dir(out, args.force)
    if partial.exists() and not (args.resume or args.force):
        raise UserError(f"a partial run is in {partial}; pass --resume to continue it or --force to start over")
    if args.resume and not partial.exists():
        raise UserError(f"nothing to resume in {partial}; run without --resume")
    if args.force and not args.resume:
        shutil.rmtree(partial, ignore_errors=True)
    dataset = dataset_from_args(args)
    cfg = StyleGANConfig(dataset.num_classes, dataset.image_size, dataset.channels, channel_base=args.channel_base,
                         channel_max=args.channel_max)  # fmt: skip
    recipe = GanRecipe(steps=args.steps, batch=args.batch, checkpoint_every=args.checkpoint_every,
                       sample_every=args.sample_every, d_channel_base=args.channel_base,
                       d_channel_max=args.channel_max)  # fmt: skip
    device = pick_device(args.device)
    trainer = GanTrainer(dataset, cfg, recipe, args.seed, device, resolve_precision(args.precision, device))
    history = trainer.run(partial, progress=not args.quiet)
    dtype = torch.float16 if args.fp16 else torch.float32
    extra = {"dataset": dataset.name, "steps": trainer.step, "train_seconds": round(trainer.seconds, 1),
             "precision": trainer.precision}  # fmt: skip
    trainer.G_ema.save_pretrained(out, dtype, force=True, extra_config=extra)
    write_json(out / "history.json", history)
    shutil.copytree(partial / "samples", out / "samples", dirs_exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    print(f"wrote {out} ({trainer.step} steps in {trainer.seconds:.0f} s; samples in {out / 'samples'})")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from gendistill.evaluate.prior_quality import prior_quality
    from gendistill.priors import check_fits, load_prior
    from gendistill.report import render_table
    from gendistill.runtime import pick_device

    dataset = dataset_from_args(args)
    device = pick_device(args.device)
    prior = load_prior(args.prior, args.code_dir, args.trust_pickle, dataset.image_size).to(device)
    check_fits(prior, dataset)
    q = prior_quality(prior, dataset, args.classifier_epochs, args.per_class, args.seed, device)
    print(render_table([{k: f"{v:.4f}" if isinstance(v, float) else v for k, v in q.items()}]))
    if args.json:
        write_json(args.json, q)
    return 0
