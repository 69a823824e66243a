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
    # H-GLaD's layer walk: after every ``stage_iterations`` the parameterisation advances (0: one stage)
    stage_iterations: int = 0
    # snapshot selection within a stage: score every ``select_every`` iterations, keep the lowest, and
    # restore it at the stage's end (CRFD in H-GLaD); 0 = keep the last state
    select_every: int = 0


@dataclass
class History:
    losses: list[float] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    selected: list[dict] = field(default_factory=list)  # per stage: the snapshot kept and its score


def _optimizer(params: Parameterisation, objective: Objective, schedule: Schedule) -> torch.optim.Optimizer:
    groups = params.param_groups(schedule.lr)
    groups += [{"params": [p], "lr": lr} for _, p, lr in objective.learnables()]
    return torch.optim.SGD([{**g, "momentum": schedule.momentum} for g in groups])


class _Best:
    """The lowest-scoring snapshot of the current stage, held as copies (never references: H-GLaD's public
    code kept references, so its restore restored nothing)."""

    def __init__(self) -> None:
        self.score, self.iteration, self.state = float("inf"), -1, None

    def offer(self, score: float, iteration: int, params: Parameterisation) -> None:
        if score < self.score:
            self.score, self.iteration = score, iteration
            self.state = {k: v.detach().clone() for k, v in params.state_dict().items()}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"best.{k}": v for k, v in (self.state or {}).items()}

    def info(self) -> dict:
        return {"score": self.score, "iteration": self.iteration}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], info: dict) -> _Best:
        best = cls()
        best.score, best.iteration = info["score"], info["iteration"]
        state = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")}
        best.state = state or None
        return best


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
    selector: Callable[[Parameterisation], float] | None = None,
) -> History:
    """Optimise ``params`` in place for ``schedule.iterations``; return the loss and validation history.

    ``on_iteration(done, params, history)`` runs after each iteration (snapshots, custom stopping); it
    returning True ends the run there, after that iteration's checkpoint. ``selector(params)`` scores
    snapshots when ``schedule.select_every`` is set (lower is better).
    """
    tune_cpu_allocator()
    params.to(ctx.device)
    history, start, best = History(), 0, _Best()
    resumed = None
    if resume and checkpoint_dir is not None:
        tensors, info = load_checkpoint(checkpoint_dir)
        # the parameterisation first: at a later H-GLaD stage its tensors have other shapes
        params.load_state_dict({k[len("params.") :]: v for k, v in tensors.items() if k.startswith("params.")})
        for name, p, _ in objective.learnables():
            p.data.copy_(tensors[f"objective.{name}"])
        start, history = info["iteration"], History(**info["history"])
        best = _Best.restore(tensors, info["best"])
        resumed = tensors, info
    opt = _optimizer(params, objective, schedule)
    if resumed is not None:
        restore_optimizer(opt, resumed[0], resumed[1]["optimizer"])
    bar = tqdm(range(start, schedule.iterations), initial=start, total=schedule.iterations, desc="distill",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    for it in bar:
        if schedule.stage_iterations and it > 0 and it % schedule.stage_iterations == 0 and params.can_advance():
            _end_stage(params, best, history)
            params.advance()
            opt, best = _optimizer(params, objective, schedule), _Best()
        t0 = time.perf_counter()
        last = 0.0
        for loss in objective.losses(params, ctx, it):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            params.finish_backward()
            opt.step()
            params.after_step()
            last = float(loss.detach())
        history.losses.append(last)
        history.seconds += time.perf_counter() - t0
        bar.set_postfix_str(f"loss {last:.4g}")
        done = it + 1
        if selector is not None and schedule.select_every and done % schedule.select_every == 0:
            best.offer(selector(params), done, params)
        if schedule.eval_every and done % schedule.eval_every == 0:
            history.val.append(_validate(params, ctx, schedule, done))
            bar.write(f"iteration {done}: val acc {100 * history.val[-1]['val_acc']:.2f}%")
        stop = on_iteration is not None and on_iteration(done, params, history)
        if checkpoint_dir is not None and schedule.checkpoint_every and done % schedule.checkpoint_every == 0:
            _save(checkpoint_dir, params, objective, opt, done, history, best)
        if stop:
            break
    bar.close()
    _end_stage(params, best, history)
    return history


def _end_stage(params: Parameterisation, best: _Best, history: History) -> None:
    """Restore the stage's best snapshot, if one was scored, and record which it was."""
    if best.state is not None:
        params.load_state_dict(best.state)
        history.selected.append({"layer": params.describe().get("layer"), **best.info()})


def _save(path: Path, params: Parameterisation, objective: Objective, opt: torch.optim.Optimizer, iteration: int,
          history: History, best: _Best) -> None:  # fmt: skip
    opt_tensors, opt_info = optimizer_tensors(opt)
    tensors = {f"params.{k}": v for k, v in params.state_dict().items()}
    tensors.update({f"objective.{name}": p for name, p, _ in objective.learnables()})
    tensors.update(opt_tensors)
    tensors.update(best.tensors())
    save_checkpoint(path, tensors, {"iteration": iteration, "optimizer": opt_info, "history": asdict(history),
                                    "best": best.info()})  # fmt: skip
