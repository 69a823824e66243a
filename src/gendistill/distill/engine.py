"""The one distillation loop. It knows neither where the images come from (the parameterisation) nor
what must match (the objective): it steps an optimiser over their tensors, checkpoints and resumes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gendistill.distill.checkpoint import (
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from gendistill.objectives import MatchContext, Objective
from gendistill.params import Parameterisation
from gendistill.runtime import tune_cpu_allocator


@dataclass
class Schedule:
    """How long and how fast: iterations, the parameterisation's SGD settings, checkpoint and validation
    cadence. ``eval_every`` evaluates on the validation split carved from training data, never the test."""

    iterations: int
    lr: float
    momentum: float = 0.5
    checkpoint_every: int = 0
    eval_every: int = 0
    eval_epochs: int = 50
    eval_model: str = "convnet"


@dataclass
class History:
    losses: list[float] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _optimizer(params: Parameterisation, objective: Objective, schedule: Schedule) -> torch.optim.Optimizer:
    groups = [{"params": list(params.parameters()), "lr": schedule.lr, "momentum": schedule.momentum}]
    groups += [{"params": [p], "lr": lr, "momentum": schedule.momentum} for _, p, lr in objective.learnables()]
    return torch.optim.SGD(groups)


def _validate(params: Parameterisation, ctx: MatchContext, schedule: Schedule, iteration: int) -> dict:
    from gendistill.evaluate import evaluate

    report = evaluate(params.to_synthetic_set({}), ctx.dataset, models=[schedule.eval_model], runs=1,
                      preset="quick", epochs=schedule.eval_epochs, split="val", seed=ctx.seed,
                      augment="dsa" if ctx.augment else "none", progress=False)  # fmt: skip
    return {"iteration": iteration, "val_acc": report.results[0].mean}


def run(
    params: Parameterisation,
    objective: Objective,
    ctx: MatchContext,
    schedule: Schedule,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_iteration: Callable[[int, Parameterisation, History], bool | None] | None = None,
) -> History:
    """Optimise ``params`` in place for ``schedule.iterations``; return the loss and validation history.

    ``on_iteration(done, params, history)`` runs after each iteration (snapshots, custom stopping); it
    returning True ends the run there, after that iteration's checkpoint.
    """
    tune_cpu_allocator()
    params.to(ctx.device)
    opt = _optimizer(params, objective, schedule)
    history, start = History(), 0
    if resume and checkpoint_dir is not None:
        tensors, info = load_checkpoint(checkpoint_dir)
        params.load_state_dict({k[len("params.") :]: v for k, v in tensors.items() if k.startswith("params.")})
        for name, p, _ in objective.learnables():
            p.data.copy_(tensors[f"objective.{name}"])
        restore_optimizer(opt, tensors, info["optimizer"])
        start, history = info["iteration"], History(**info["history"])
    bar = tqdm(range(start, schedule.iterations), initial=start, total=schedule.iterations, desc="distill",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    for it in bar:
        t0 = time.perf_counter()
        last = 0.0
        for loss in objective.losses(params, ctx, it):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = float(loss.detach())
        history.losses.append(last)
        history.seconds += time.perf_counter() - t0
        bar.set_postfix_str(f"loss {last:.4g}")
        done = it + 1
        if schedule.eval_every and done % schedule.eval_every == 0:
            history.val.append(_validate(params, ctx, schedule, done))
            bar.write(f"iteration {done}: val acc {100 * history.val[-1]['val_acc']:.2f}%")
        if checkpoint_dir is not None and schedule.checkpoint_every and done % schedule.checkpoint_every == 0:
            _save(checkpoint_dir, params, objective, opt, done, history)
        if on_iteration is not None and on_iteration(done, params, history):
            break
    bar.close()
    return history


def _save(path: Path, params: Parameterisation, objective: Objective, opt: torch.optim.Optimizer, iteration: int,
          history: History) -> None:  # fmt: skip
    opt_tensors, opt_info = optimizer_tensors(opt)
    tensors = {f"params.{k}": v for k, v in params.state_dict().items()}
    tensors.update({f"objective.{name}": p for name, p, _ in objective.learnables()})
    tensors.update(opt_tensors)
    save_checkpoint(path, tensors, {"iteration": iteration, "optimizer": opt_info, "history": asdict(history)})
