"""A method is a parameterisation + an objective + a schedule; this registry names the combinations.

``distill(dataset, "dm", ipc=10, out="runs/dm10")`` builds them from the published defaults (see
METHODS.md), applies overrides, runs the one engine, and writes the artifact with its grid.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from gendistill.artifacts import Artifact, make_meta
from gendistill.augment import DSA, strategy_for
from gendistill.data import ImageDataset
from gendistill.distill import History, Schedule, distributed, run
from gendistill.distill.memory import check_fits_in_memory
from gendistill.errors import UserError
from gendistill.evaluate.crfd import CRFD
from gendistill.io import check_new_dir, partial_dir
from gendistill.objectives import OBJECTIVES, REGULARISERS, MatchContext, Regulariser
from gendistill.params import PARAMS, ParamConfig, Parameterisation, config_name
from gendistill.registry import Registry
from gendistill.runtime import Runtime
from gendistill.validate import MAX_ITERATIONS, MAX_MINUTES, Limit, check_fields, check_value, limit


@dataclass(frozen=True)
class Method:
    objective: str
    augment: bool  # siamese DSA during matching
    lr: float  # learning rate of the synthetic images
    iterations: int  # the paper's count
    eval_augment: str  # what the evaluation recipe should use
    lr_high_ipc: float | None = None  # DM raises the image lr at IPC >= 100
    param: str = "pixels"  # the parameterisation when none is given
    regularisers: tuple[tuple[str, float], ...] = ()  # (name, weight) added unless the run sets that name
    param_options: tuple[tuple[str, object], ...] = ()  # the method's settings of its own ``param``

    def param_config(self, **given: object) -> ParamConfig:
        """The config of the method's own parameterisation: its settings, then ``given`` on top."""
        return PARAMS.get(self.param).Config(**{**dict(self.param_options), **given})


METHODS: Registry[Method] = Registry("method")
SHARDABLE = ("dm",)  # objectives whose classes are independent, so torchrun can shard them
METHODS.register("dc")(Method("dc", False, 0.1, 1000, "none"))
METHODS.register("dsa")(Method("dc", True, 0.1, 1000, "dsa"))
METHODS.register("dm")(Method("dm", True, 1.0, 20000, "dsa", lr_high_ipc=10.0))
# MTT's image lr for un-whitened pixels; the paper tuned it per dataset (1000 for ZCA'd CIFAR), not for
# Fashion-MNIST, so this is our choice.
METHODS.register("mtt")(Method("mtt", True, 100.0, 5000, "dsa"))
# DCGM-style (Zhang et al. 2023; our design, see params/generator.py and objectives/regularisers.py): DM
# matching of a fine-tuned generator's samples plus intra-class diversity and inter-class separation.
# The weights and iterations are ours (the paper's could not be retrieved).
# DCGM-style: settings chosen on the validation split (benchmarks/results/dcgm_search.md: 150 iterations at
# IPC 10, one setting changed at a time): every row from its stored code (fresh 0), the codes screened by the
# real-data judge at the start, the class anchor at 10 (DM's loss is ~50-300, so weight-1 terms barely count).
METHODS.register("dcgm")(
    Method(
        "dm",
        True,
        1.0,
        1000,
        "dsa",
        param="generator",
        regularisers=(("intra", 1.0), ("inter", 1.0), ("classify", 10.0)),
        param_options=(("fresh", 0.0), ("code_init", "teacher")),
    )
)
# DiM-style baseline (Wang et al. 2023, vimar-gu/DiM): the same generator fine-tuned with a GAN term (a critic
# trained alongside) plus logit matching under a pool of networks trained online on real data, DSA on both
# sides. The codes do not learn (DiM has none: every iteration renders fresh noise); the stored codes are one
# seeded draw, the fixed set of reading (a). Iterations as DCGM's, for a comparison at equal budget.
METHODS.register("dim")(
    Method(
        "pool",
        True,
        1.0,
        1000,
        "dsa",
        param="generator",
        regularisers=(("gan", 1.0),),
        param_options=(("train_codes", False), ("fresh", 1.0)),
    )
)

COMPILE_MIN_ITERATIONS = 20  # compiling costs ~12 s once and saves ~1.5 s per DM iteration on a 2-core CPU


@dataclass(frozen=True)
class RunOptions:
    """How a distillation runs, whatever the parameterisation: budget, matching network, seed, device.

    ``iterations``/``lr``: None takes the method's published count and image learning rate.
    ``minutes``: a compute budget, the run stops after the first iteration that brings its distillation time
    (iterations only, not checkpoints or set-up) to ``minutes``, or at ``iterations``, whichever comes first;
    a resumed run counts the time before the interruption. Unlike an iteration count it ties the result to
    the machine's speed: record both.
    ``real_batch``: real images per class per step. ``eval_every`` validates on the validation split.
    """

    iterations: int | None = limit(None, ge=1, le=MAX_ITERATIONS, help="default: the paper's count for the method")
    minutes: float | None = limit(
        None,
        gt=0,
        le=MAX_MINUTES,
        help="compute budget: stop once the iterations took this many minutes (or at --iterations, "
        "whichever comes first)",
    )
    lr: float | None = limit(None, gt=0, help="learning rate of the synthetic images (default: the paper's)")
    model: str = limit("convnet", help="network used for matching")
    real_batch: int = limit(256, ge=1, le=1_000_000, help="real images per class per step")
    seed: int = limit(0, help="seed of every random draw")
    device: str | None = limit(None, help="auto, cpu, cuda or cuda:N")
    checkpoint_every: int = limit(0, ge=0, hint="0 writes no checkpoints", help="iterations between checkpoints")
    eval_every: int = limit(0, ge=0, hint="0 never validates", help="iterations between validation-split evaluations")
    compile: bool | str = limit("auto", help="torch.compile the matching network: auto, true or false")
    # auto: bf16 autocast where the hardware runs it fast (AMX, AVX512-BF16, CUDA)
    precision: str = limit("auto", help="auto, fp32 or bf16", choices=("auto", "fp32", "bf16"))
    objective: dict = field(default_factory=dict)  # the objective's --set options, e.g. {"syn_steps": 10}
    regularisers: tuple[tuple[str, float], ...] = ()  # (registered name, weight)

    def __post_init__(self) -> None:
        check_fields(self)
        for name, weight in self.regularisers:
            check_value(f"the weight of regulariser {name}", weight, float, Limit(ge=0, hint="0 switches it off"))


def settings(method: str, param: dict | None = None, options: dict | None = None) -> tuple[ParamConfig, RunOptions]:
    """A run's configs from plain dicts, the one shape the command line, ``--config``, suites and a recorded
    artifact share: ``param = {"name": ..., <its config's fields>}`` (no name: the method's own) and
    ``options = {<RunOptions fields>, "objective": {...}, "regularisers": {name: weight}}``. An unknown key
    is one line that lists the valid ones."""
    spec = METHODS.get(method)
    param = dict(param or {})
    name = param.pop("name", None) or spec.param
    config_class = PARAMS.get(name).Config
    _known(f"--param {name} setting", param, config_class)
    config = spec.param_config(**param) if name == spec.param else config_class(**param)
    options = dict(options or {})
    _known("run option", options, RunOptions)
    if isinstance(options.get("regularisers"), dict):
        options["regularisers"] = tuple(options["regularisers"].items())
    elif "regularisers" in options:
        options["regularisers"] = tuple(tuple(pair) for pair in options["regularisers"])
    run = RunOptions(**options)
    objective = OBJECTIVES.get(spec.objective).Config
    _known(f"{method} objective option", run.objective, objective)
    objective(**run.objective)  # its values, checked now rather than when the run starts
    return config, run


def _known(what: str, given: dict, config_class: type) -> None:
    valid = {f.name for f in fields(config_class)}
    unknown = sorted(set(given) - valid)
    if unknown:
        raise UserError(f"unknown {what}(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid)) or 'none'}")


def run_spec(method: str, ipc: int, dataset: ImageDataset, param: ParamConfig, options: RunOptions) -> dict:
    """What an artifact records to be made again: ``gendistill distill --config`` reads it back through
    :func:`settings` (the device is where it ran, not what it is, so it is left out)."""
    plain = {k: v for k, v in asdict(options).items() if k not in ("device", "regularisers")}
    return {
        "method": method,
        "ipc": ipc,
        "data": dict(dataset.loaded_with) or {"dataset": dataset.name},
        "param": {"name": config_name(param), **param.to_dict()},
        "options": {**plain, "regularisers": dict(options.regularisers)},
    }


# snapshot scores a parameterisation's ``select`` may name: (dataset, model, seed, device, classes) -> score
SCORES: Registry[Callable[..., Callable[[Parameterisation], float]]] = Registry("snapshot score")


@SCORES.register("crfd")
def _crfd_score(
    dataset: ImageDataset, model: str, seed: int, device: torch.device, classes: list[int], amp: torch.dtype | None
) -> Callable[[Parameterisation], float]:
    """CRFD over the classes this process owns, summed over processes: every rank keeps the same snapshot,
    the one a single process keeps."""
    crfd = CRFD(dataset, model, seed=seed, device=device, amp=amp)
    return lambda params: distributed.sum_scalar(crfd.of(params, classes), device)


def distill(
    dataset: ImageDataset,
    method: str,
    ipc: int,
    out: str | os.PathLike,
    param: ParamConfig | None = None,
    options: RunOptions | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    on_iteration: Callable[[int, Parameterisation, History], bool | None] | None = None,
) -> Artifact:
    """Distil ``dataset`` into ``ipc`` images per class with ``method``; write the artifact to ``out``.

    ``param``: where the synthetic set lives, as a parameterisation's config (default: pixels from real
    images), e.g. ``PARAMS.get("hglad").Config(select="crfd")``. ``options``: how the run goes.

    Checkpoints go to ``<out>.partial/`` and are removed once the artifact is written; ``resume=True``
    continues from there and ends with the same artifact as an uninterrupted run. A ``<out>.partial/``
    left by an earlier run is refused without ``resume`` (or ``force``, which discards it).
    """
    spec = METHODS.get(method)
    param = param if param is not None else spec.param_config()
    options = options or RunOptions()
    out = Path(out)
    partial = partial_dir(out)
    if not resume:
        check_new_dir(out, force, create_parents=True)
        if partial.exists() and not force:
            raise UserError(f"an earlier run left {partial}; pass --resume to continue it or --force to discard it")
    rank, size = distributed.world()
    if size > 1 and spec.objective not in SHARDABLE:
        raise UserError(f"sharding classes over processes works for {', '.join(SHARDABLE)} only; run {method} in one")
    regularisers = [REGULARISERS.get(name)(weight) for name, weight in method_regularisers(spec, options)]
    rt = Runtime.resolve(options.device, options.precision)
    dev, amp = rt.device, rt.amp
    gen = torch.Generator().manual_seed(options.seed)
    param_class = PARAMS.get(config_name(param))
    if options.lr is not None and not param_class.takes_image_lr:
        raise UserError(
            f"--lr (the image learning rate) does not apply to --param {param_class.name}; "
            "set its own rates (generator: --lr-g, --lr-codes)"
        )
    params = param_class.build(dataset, ipc, param, gen, dev, spec.objective)
    objective = OBJECTIVES.get(spec.objective).from_options(ipc, options.objective)
    augment = DSA(strategy_for(dataset.name)) if spec.augment else None
    classes = distributed.owned_classes(dataset.num_classes, rank, size)
    total = options.iterations or spec.iterations
    compiled = total >= COMPILE_MIN_ITERATIONS if options.compile == "auto" else bool(options.compile)
    params.set_precision(amp)
    ctx = MatchContext(
        dataset,
        options.model,
        augment,
        dev,
        options.seed,
        options.real_batch,
        classes=classes,
        compile=compiled,
        amp=amp,
    )
    image_lr = (
        options.lr if options.lr is not None else (spec.lr_high_ipc if spec.lr_high_ipc and ipc >= 100 else spec.lr)
    )
    schedule = Schedule(total, image_lr, checkpoint_every=options.checkpoint_every, eval_every=options.eval_every)
    select = getattr(params.config, "select", "none")
    selector = SCORES.get(select)(dataset, options.model, options.seed, dev, classes, amp) if select != "none" else None
    config = _config(method, ipc, param_class.name, params, objective, augment, options, schedule, regularisers)
    config["precision"] = "bf16" if amp is not None else "fp32"  # what "auto" resolved to on this machine
    params.to(dev)
    check_fits_in_memory(params, objective, ctx)
    ckpt = partial / f"rank{rank}" if size > 1 else partial
    if force and not resume and rank == 0:
        shutil.rmtree(partial, ignore_errors=True)
    history = run(
        params,
        objective,
        ctx,
        schedule,
        ckpt,
        resume,
        progress and rank == 0,
        _with_budget(on_iteration, options.minutes),
        selector,
        regularisers,
        run_config={**config, "world_size": size},
    )
    if size > 1:
        if not params.shared:  # shared tensors are equal on every rank already (their gradients were summed)
            distributed.merge(params, classes)
        history.losses = distributed.sum_losses(history.losses, dev)
    config["param"].update(params.describe())  # its state after the run (H-GLaD: the layer it ended at)
    meta = make_meta(method, dataset, ipc, config, options.seed)
    # "auto" precision resolved to what ran, so the spec makes the same set on another machine
    meta["spec"] = run_spec(method, ipc, dataset, param, replace(options, precision=config["precision"]))
    meta["eval_augment"] = spec.eval_augment
    meta["history"] = {
        "loss": history.losses,
        "val": history.val,
        "distill_seconds": history.seconds,
        "selected": history.selected,
    }
    meta["world_size"] = size
    synthetic = params.to_artifact(meta, lr=objective.artifact_lr())
    if rank == 0:
        synthetic.save(out, force=force or resume)
        shutil.rmtree(partial, ignore_errors=True)
    if size > 1:
        distributed.finish()
    return synthetic


def _with_budget(on_iteration: Callable | None, minutes: float | None) -> Callable | None:
    """``on_iteration`` that also ends the run once its distillation time reaches ``minutes``."""
    if minutes is None:
        return on_iteration

    def stop(done: int, params: Parameterisation, history: History) -> bool:
        asked = bool(on_iteration(done, params, history)) if on_iteration is not None else False
        return asked or history.seconds >= 60.0 * minutes

    return stop


def method_regularisers(spec: Method, options: RunOptions) -> list[tuple[str, float]]:
    """The method's regularisers with the run's on top: a name the run gives replaces the method's weight."""
    weights = dict(spec.regularisers)
    for name, weight in options.regularisers:
        REGULARISERS.get(name)  # an unknown name fails here, in one line
        weights[name] = weight
    return list(weights.items())


def _config(
    method: str,
    ipc: int,
    param_name: str,
    params: Parameterisation,
    objective,
    augment: DSA | None,
    options: RunOptions,
    schedule: Schedule,
    regularisers: list[Regulariser],
) -> dict:
    """Everything that made the set, derived from the objects that ran (nothing restated by hand). It is
    fixed before the run starts, so a checkpoint can record it and a resume compare against it."""
    run_options = {k: v for k, v in asdict(options).items() if k not in ("objective", "regularisers", "device")}
    return {
        "method": method,
        "ipc": ipc,
        "run": run_options,
        "augment": augment.strategy if augment else "none",
        "schedule": vars(schedule),
        "stages": asdict(params.stages(schedule.iterations)),
        "objective": {"name": objective.name, **objective.config()},
        "param": {"name": param_name, "config": params.config.to_dict()},
        "regularisers": [r.config() for r in regularisers],
    }
