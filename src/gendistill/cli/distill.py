"""``gendistill distill``: run a distillation method and write its artifact."""

from __future__ import annotations

import argparse

from gendistill.cli.common import add_dataset_args, add_runtime_args, add_set_args, dataset_from_args, positive_int
from gendistill.io import check_new_dir
from gendistill.methods import METHODS, distill


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="distil a dataset into a small synthetic set",
        description="Distil a dataset with a matching method; writes an artifact folder and its grid.",
    )
    add_set_args(p, METHODS.names())
    p.add_argument("--iterations", type=positive_int, help="default: the paper's count for the method")
    p.add_argument("--lr", type=float, help="learning rate of the synthetic images (default: the paper's)")
    p.add_argument("--init", default="real", choices=["real", "noise"])
    p.add_argument("--model", default="convnet", help="network used for matching")
    p.add_argument("--real-batch", type=positive_int, default=256, help="real images per class per step")
    p.add_argument("--checkpoint-every", type=int, default=0, help="iterations between checkpoints (0: none)")
    p.add_argument("--eval-every", type=int, default=0, help="iterations between validation-split evaluations")
    p.add_argument("--resume", action="store_true", help="continue from <out>.partial/")
    p.add_argument("--experts", help="MTT: folder of expert trajectories from 'gendistill experts'")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an objective option, e.g. --set syn_steps=10 --set outer_loop=5 (repeatable)")  # fmt: skip
    p.add_argument("--recipe", help="YAML file of these options (keys as the long option names, - or _); "
                   "options given on the command line win")  # fmt: skip
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


def run(args: argparse.Namespace) -> int:
    if not args.resume:
        check_new_dir(args.out, args.force)
    dataset = dataset_from_args(args)
    synthetic = distill(
        dataset, args.method, args.ipc, args.out, iterations=args.iterations, lr=args.lr, init=args.init,
        model=args.model, real_batch=args.real_batch, seed=args.seed, device=args.device,
        checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, resume=args.resume, force=args.force,
        progress=not args.quiet, objective_options=objective_options(args),
        compile=False if args.no_compile else "auto",
    )  # fmt: skip
    hist = synthetic.meta["history"]
    took = f"{len(hist['loss'])} iterations in {hist['distill_seconds']:.0f} s, final loss {hist['loss'][-1]:.4g}"
    print(f"wrote {args.out} ({len(synthetic)} images, {args.method}, ipc {args.ipc}, {took})")
    return 0
