"""``gendistill invert``: one learned conditioning per real image under a frozen diffusion prior."""

from __future__ import annotations

import argparse

from gendistill.cli.common import add_dataset_args, add_precision_arg, dataset_from_args, runtime, took
from gendistill.cli.flags import add_config_flags, config_from
from gendistill.errors import UserError
from gendistill.inversion import InversionConfig
from gendistill.priors import shipped_for, shipped_help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "invert",
        help="invert real images into a diffusion prior's conditioning space",
        description="Learn one conditioning (tokens x the cross-attention width) per real image, "
        "class-balanced, by the prior's denoising loss over random timesteps (Diffusion "
        "Inversion). Resumable; under torchrun each rank inverts its own classes.",
    )
    p.add_argument(
        "--prior",
        help="a shipped prior or a diffusers model folder (unet/, scheduler/, optional vae/), e.g. one written "
        f"by gendistill prior train --kind diffusion (default: <dataset>-diffusion; shipped: {shipped_help()})",
    )
    p.add_argument("--out", required=True, help="embedding set folder to create")
    add_config_flags(p, [InversionConfig])
    p.add_argument("--resume", action="store_true", help="continue from <out>.partial/")
    p.add_argument("--force", action="store_true", help="replace --out and any partial run")
    p.add_argument("--trust-pickle", action="store_true", help="allow a prior whose weights are pickle .bin files")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    add_precision_arg(p)
    add_dataset_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gendistill.inversion import invert

    config = config_from(args, InversionConfig)
    config.check()
    args.seed = config.seed  # the validation split is drawn with the run's seed, as everywhere
    dataset = dataset_from_args(args)
    prior = args.prior or default_diffusion_prior(dataset.name)
    rt = runtime(args)
    result = invert(
        prior,
        dataset,
        config,
        args.out,
        device=rt.device,
        amp=rt.amp,
        resume=args.resume,
        force=args.force,
        trust_pickle=args.trust_pickle,
        progress=not args.quiet,
    )
    if result is not None:
        m = result.meta
        shape = list(result.embeddings.shape[1:])
        print(
            f"wrote {args.out} ({len(result.labels)} embeddings of {shape}; {took(args, m['seconds'], 'inversion')}, "
            f"{m['images_per_minute']:.0f} images/min; final loss {m['loss'][-1]:.4f})"
        )
    return 0


def default_diffusion_prior(dataset: str) -> str:
    name = shipped_for(dataset, "diffusion")
    if name is None:
        raise UserError(
            f"no diffusion prior is shipped for {dataset}; pass --prior FOLDER (train one: gendistill prior train "
            f"--kind diffusion --dataset {dataset} --out runs/prior)"
        )
    return name
