"""``gendistill distill``: run a distillation method and write its artifact.

The run's settings are one dict, the shape :func:`gendistill.methods.settings` reads and every artifact
records under ``spec`` (method, ipc, data, param, options). Its flags are generated from the config
fields (:mod:`gendistill.cli.flags`); ``--config`` starts from an artifact's recorded dict, so a run is
made again exactly, and anything given on the command line overrides it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from gendistill.cli.common import add_dataset_args, add_runtime_args, dataset_from_args, took
from gendistill.cli.flags import add_config_flags, given
from gendistill.errors import UserError
from gendistill.io import check_new_dir
from gendistill.methods import METHODS, RunOptions, distill, settings
from gendistill.models import parse_model_spec
from gendistill.objectives import OBJECTIVES, REGULARISERS
from gendistill.params import PARAMS
from gendistill.priors import shipped_help
from gendistill.validate import finite_number

# RunOptions fields with flags of their own elsewhere: the runtime group (--seed, --device, --precision,
# --no-compile), --set (objective) and --reg (regularisers)
RUNTIME_FIELDS = ("seed", "device", "precision", "compile", "objective", "regularisers")
RUN_FIELDS = [f.name for f in fields(RunOptions) if f.name not in RUNTIME_FIELDS]
PARAM_CLASSES = [PARAMS.get(name).Config for name in PARAMS.names()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="distil a dataset into a small synthetic set",
        description="Distil a dataset with a matching method; writes an artifact folder and its grid.",
    )
    p.add_argument("--method", choices=METHODS.names(), help="required unless --config gives it")
    p.add_argument("--ipc", type=int, help="images per class (required unless --config gives it)")
    p.add_argument("--out", required=True, help="artifact folder to create")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--config",
        help="an artifact folder (or its config.json): make its run again, exactly; options given here override "
        "its settings",
    )
    p.add_argument("--resume", action="store_true", help="continue from <out>.partial/")
    add_config_flags(p, [RunOptions], skip=RUNTIME_FIELDS)
    p.add_argument("--experts", help="MTT: folder of expert trajectories from 'gendistill experts'")
    p.add_argument(
        "--reg",
        action="append",
        default=[],
        metavar="NAME=WEIGHT",
        help=f"add a regulariser to the loss ({', '.join(REGULARISERS.names())}); repeatable; "
        "replaces the method's weight for that name; 0 switches it off",
    )
    g = p.add_argument_group(
        "where the set lives",
        f"pixels, GAN latents (GLaD, H-GLaD) or a generator (DCGM); shipped priors: {shipped_help()}",
    )
    g.add_argument(
        "--param",
        choices=PARAMS.names(),
        help="where the synthetic set lives: pixels, one layer of a GAN (glad), the GAN's layers walked "
        "from the latent space toward pixels (hglad), or a generator's weights plus one code per "
        "image (generator); default: the method's (pixels; dcgm: generator)",
    )
    add_config_flags(g, PARAM_CLASSES)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any setting by name: an objective option (--set syn_steps=10), a run option or a --param "
        "setting; prefix objective., options. or param. where a name is ambiguous (repeatable)",
    )
    p.add_argument(
        "--recipe",
        help="YAML file of these options (keys as the long option names, - or _); "
        "options given on the command line win",
    )
    add_dataset_args(p, default=None)
    add_runtime_args(p)
    # not given = the --config's value, else the config default (see spec_from_args)
    p.set_defaults(run=run, parser=p, val_fraction=None, seed=None, precision=None)


def read_spec(path: str) -> dict:
    """The ``spec`` an artifact recorded: the settings that made it."""
    where = Path(path)
    file = where / "config.json" if where.is_dir() else where
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read --config {path}: {e}; pass an artifact folder or its config.json") from None
    spec = config.get("spec") if isinstance(config, dict) else None
    if not isinstance(spec, dict):
        raise UserError(
            f"--config {path} records no run settings (an artifact of an older gendistill, or not a distilled "
            "set); give the options as flags"
        )
    return spec


def spec_from_args(args: argparse.Namespace) -> dict:
    """The run's settings: the ``--config`` artifact's, then what the command line gives on top."""
    base = read_spec(args.config) if args.config else {}
    method = args.method or base.get("method")
    ipc = args.ipc if args.ipc is not None else base.get("ipc")
    if method is None or ipc is None:
        raise UserError("pass --method and --ipc (or --config with an artifact to make again)")
    same = base.get("method") == method
    param_name = args.param or (base.get("param", {}).get("name") if same else None) or METHODS.get(method).param
    base_param = base.get("param", {}) if same and base.get("param", {}).get("name") == param_name else {}
    param = {**{k: v for k, v in base_param.items() if k != "name"}, **_param_flags(args, param_name)}
    options = {**base.get("options", {}), **given(args, RUN_FIELDS)}
    for name in ("seed", "precision"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.no_compile:
        options["compile"] = False
    options["device"] = args.device
    objective = dict(options.get("objective", {}))
    if args.experts:
        objective["experts"] = args.experts
    regs = {**dict(options.get("regularisers", {})), **dict(regularisers(args))}
    options.update(objective=objective, regularisers=regs)
    spec = {"method": method, "ipc": ipc, "param": {"name": param_name, **param}, "options": options}
    _apply_set(args.set, spec)
    spec["data"] = _data(args, base.get("data", {}))
    return spec


def _param_flags(args: argparse.Namespace, name: str) -> dict:
    """The --param settings given as flags; one that does not apply to ``name`` is refused, not ignored."""
    flags = given(args, {f.name for c in PARAM_CLASSES for f in fields(c)})
    takes = {f.name for f in fields(PARAMS.get(name).Config)}
    wrong = sorted(k for k in flags if k not in takes)
    if wrong:
        raise UserError(f"{', '.join('--' + k.replace('_', '-') for k in wrong)} do(es) not apply to --param {name}")
    return flags


def _apply_set(pairs: list[str], spec: dict) -> None:
    """``--set KEY=VALUE``: the objective's option of that name, else a run option, else a --param setting."""
    text = ",".join(pairs)
    values = parse_model_spec(f"x[{text}]")[1] if text else {}
    method = METHODS.get(spec["method"])
    places = {
        "objective": {f.name for f in fields(OBJECTIVES.get(method.objective).Config)},
        "options": {f.name for f in fields(RunOptions)} - {"objective", "regularisers"},
        "param": {f.name for f in fields(PARAMS.get(spec["param"]["name"]).Config)},
    }
    for key, value in values.items():
        where, _, name = key.rpartition(".")
        if where and where not in places:
            raise UserError(f"--set {key}: the prefix must be objective., options. or param.")
        where = where or next((w for w, names in places.items() if name in names), "")
        if not where or (name not in places[where] and where != "objective"):
            every = sorted(set().union(*places.values()))
            raise UserError(f"--set {key}: no setting of that name for {spec['method']}; known: {', '.join(every)}")
        target = spec["options"]["objective"] if where == "objective" else spec[where]
        target[name] = value


def _data(args: argparse.Namespace, recorded: dict) -> dict:
    """Which data: the flags, else the artifact's recorded dataset and folder (when it is the same one)."""
    name = args.dataset or recorded.get("dataset") or "fashion-mnist"
    same = recorded.get("dataset") == name
    data_dir = args.data_dir or (recorded.get("data_dir") if same else None)
    val_fraction = args.val_fraction if args.val_fraction is not None else recorded.get("val_fraction", 0.05)
    image_size = args.image_size if args.image_size is not None else (recorded.get("image_size") if same else None)
    return {"dataset": name, "data_dir": data_dir, "val_fraction": val_fraction, "image_size": image_size}


def regularisers(args: argparse.Namespace) -> tuple[tuple[str, float], ...]:
    """``--reg NAME=WEIGHT`` options, checked: a known name, a number >= 0."""
    out = []
    for text in args.reg:
        name, sep, weight = text.partition("=")
        if not sep:
            raise UserError(f"--reg {text}: write NAME=WEIGHT, e.g. --reg intra=0.5")
        REGULARISERS.get(name.strip())
        value = finite_number(f"--reg {text}: the weight", weight)
        if not value >= 0:
            raise UserError(f"--reg {text}: the weight must be >= 0 (0 switches the term off)")
        out.append((name.strip(), value))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    if not args.resume:
        check_new_dir(args.out, args.force, create_parents=True)
    spec = spec_from_args(args)
    param, options = settings(spec["method"], spec["param"], spec["options"])
    data = argparse.Namespace(**{**vars(args), **spec["data"], "seed": options.seed})
    dataset = dataset_from_args(data)
    synthetic = distill(
        dataset,
        spec["method"],
        spec["ipc"],
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
        f"wrote {args.out} ({len(synthetic.training_set())} images, {kind}, {spec['method']}, ipc {spec['ipc']}, "
        f"{len(hist['loss'])} iterations, {time}, final loss {hist['loss'][-1]:.4g})"
    )
    return 0
