"""``gendistill distill``: run a distillation method and write its artifact."""

from __future__ import annotations

import argparse
from dataclasses import fields

from gendistill.cli.common import (
    add_dataset_args,
    add_runtime_args,
    add_set_args,
    dataset_from_args,
    positive_float,
    positive_int,
    took,
)
from gendistill.errors import UserError
from gendistill.io import check_new_dir
from gendistill.methods import METHODS, RunOptions, distill
from gendistill.objectives import REGULARISERS
from gendistill.params import PARAMS, ParamConfig
from gendistill.priors import shipped_help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="distil a dataset into a small synthetic set",
        description="Distil a dataset with a matching method; writes an artifact folder and its grid.",
    )
    add_set_args(p, METHODS.names())
    p.add_argument("--iterations", type=positive_int, help="default: the paper's count for the method")
    p.add_argument(
        "--minutes",
        type=positive_float,
        help="compute budget: stop once the iterations took this "
        "many minutes (or at --iterations, whichever comes first)",
    )
    p.add_argument("--lr", type=float, help="learning rate of the synthetic images (default: the paper's)")
    p.add_argument("--init", default="real", choices=["real", "noise"], help="pixels: start from real images or noise")
    p.add_argument("--model", default="convnet", help="network used for matching")
    p.add_argument("--real-batch", type=positive_int, default=256, help="real images per class per step")
    p.add_argument("--checkpoint-every", type=int, default=0, help="iterations between checkpoints (0: none)")
    p.add_argument("--eval-every", type=int, default=0, help="iterations between validation-split evaluations")
    p.add_argument("--resume", action="store_true", help="continue from <out>.partial/")
    p.add_argument("--experts", help="MTT: folder of expert trajectories from 'gendistill experts'")
    p.add_argument(
        "--reg",
        action="append",
        default=[],
        metavar="NAME=WEIGHT",
        help=f"add a regulariser to the loss ({', '.join(REGULARISERS.names())}); repeatable; "
        "replaces the method's weight for that name; 0 switches it off",
    )
    g = p.add_argument_group("latent spaces and generators (GLaD, H-GLaD, DCGM)")
    g.add_argument(
        "--param",
        choices=PARAMS.names(),
        help="where the synthetic set lives: pixels, one layer of a GAN (glad), the GAN's layers walked "
        "from the latent space toward pixels (hglad), or a generator's weights plus one code per "
        "image (generator); default: the method's (pixels; dcgm: generator)",
    )
    g.add_argument(
        "--prior",
        help="a shipped prior, a folder from 'gendistill prior train', or an NVlabs .pkl "
        f"(default: the prior shipped for the dataset; shipped: {shipped_help()})",
    )
    g.add_argument(
        "--layer",
        type=int,
        help="glad: the layer to optimise (-1: w+ only; default 2); hglad: the first layer of the walk (default 1)",
    )
    g.add_argument("--chunk", type=positive_int, help="render this many samples at a time to bound memory")
    g.add_argument("--lr-f", type=float, help="learning rate of the feature maps (default: GLaD's per objective)")
    g.add_argument("--lr-w", type=float, help="learning rate of w+ (default: GLaD's per objective)")
    g.add_argument(
        "--select",
        default="none",
        choices=["none", "crfd"],
        help="hglad: keep each layer's snapshot with the lowest CRFD",
    )
    g.add_argument("--select-every", type=int, default=0, help="iterations between CRFD scores (default: 5 a layer)")
    g.add_argument("--from-scratch", action="store_true", help="generator: the prior's architecture, random weights")
    g.add_argument("--fresh", type=float, help="generator: fraction of rows drawn from fresh codes per iteration")
    g.add_argument("--lr-g", type=float, help="generator: Adam learning rate of its weights")
    g.add_argument("--lr-codes", type=float, help="generator: Adam learning rate of the codes")
    g.add_argument(
        "--code-init",
        choices=["random", "teacher"],
        help="generator: stored codes from the prior's draw, or the best of --candidates by a real-data "
        "classifier's probability of their class",
    )
    g.add_argument("--candidates", type=int, help="generator, --code-init teacher: draws screened per code (8)")
    g.add_argument(
        "--weights-dtype",
        choices=["float16", "bfloat16", "float32"],
        help="generator: how the artifact stores the weights (default float16)",
    )
    g.add_argument("--code-dir", help="NVlabs .pkl priors: the checkout of the code that wrote the pickle")
    g.add_argument("--trust-pickle", action="store_true", help="NVlabs .pkl priors: allow unpickling (runs code)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an objective option, e.g. --set syn_steps=10 --set outer_loop=5 (repeatable)",
    )
    p.add_argument(
        "--recipe",
        help="YAML file of these options (keys as the long option names, - or _); "
        "options given on the command line win",
    )
    add_dataset_args(p)
    add_runtime_args(p)
    p.set_defaults(run=run, parser=p)


def objective_options(args: argparse.Namespace) -> dict:
    from gendistill.models import parse_model_spec

    text = ",".join(args.set)
    options = parse_model_spec(f"x[{text}]")[1] if text else {}
    if args.experts:
        options["experts"] = args.experts
    return options


PARAM_FLAGS = (
    "init",
    "prior",
    "layer",
    "chunk",
    "lr_f",
    "lr_w",
    "select",
    "select_every",
    "code_dir",
    "trust_pickle",
    "from_scratch",
    "fresh",
    "lr_g",
    "lr_codes",
    "weights_dtype",
    "code_init",
    "candidates",
)
UNSET = {"init": "real", "select": "none", "select_every": 0, "trust_pickle": False, "from_scratch": False}


def param_config(args: argparse.Namespace) -> ParamConfig:
    """The chosen parameterisation's config from the options that apply to it; the others must be unset."""
    method = METHODS.get(args.method)
    name = args.param or method.param
    config_class = PARAMS.get(name).Config
    given = {k: getattr(args, k) for k in PARAM_FLAGS}
    takes = {f.name for f in fields(config_class)}
    wrong = sorted(k for k, v in given.items() if k not in takes and v is not None and v != UNSET.get(k))
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise UserError(f"{flags} do(es) not apply to --param {name}")
    # unset options take the method's settings of its parameterisation, else the config's defaults
    given = {k: v for k, v in given.items() if k in takes and v is not None}
    return method.param_config(**given) if name == method.param else config_class(**given)


def regularisers(args: argparse.Namespace) -> tuple[tuple[str, float], ...]:
    """``--reg NAME=WEIGHT`` options, checked: a known name, a number >= 0."""
    out = []
    for text in args.reg:
        name, sep, weight = text.partition("=")
        if not sep:
            raise UserError(f"--reg {text}: write NAME=WEIGHT, e.g. --reg intra=0.5")
        REGULARISERS.get(name.strip())
        try:
            value = float(weight)
        except ValueError:
            raise UserError(f"--reg {text}: the weight must be a number, got {weight!r}") from None
        if not value >= 0:
            raise UserError(f"--reg {text}: the weight must be >= 0 (0 switches the term off)")
        out.append((name.strip(), value))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    if not args.resume:
        check_new_dir(args.out, args.force, create_parents=True)
    param = param_config(args)
    options = RunOptions(
        iterations=args.iterations,
        minutes=args.minutes,
        lr=args.lr,
        model=args.model,
        real_batch=args.real_batch,
        seed=args.seed,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        compile=False if args.no_compile else "auto",
        precision=args.precision,
        objective=objective_options(args),
        regularisers=regularisers(args),
    )
    dataset = dataset_from_args(args)
    synthetic = distill(
        dataset,
        args.method,
        args.ipc,
        args.out,
        param,
        options,
        resume=args.resume,
        force=args.force,
        progress=not args.quiet,
    )
    hist = synthetic.meta["history"]
    time = took(args, hist["distill_seconds"], "distillation")
    kind = f"{synthetic.class_name}, {synthetic.storage_bytes():,} bytes stored"
    print(
        f"wrote {args.out} ({len(synthetic.training_set())} images, {kind}, {args.method}, ipc {args.ipc}, "
        f"{len(hist['loss'])} iterations, {time}, final loss {hist['loss'][-1]:.4g})"
    )
    return 0
