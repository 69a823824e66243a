"""The one distillation loop. It knows neither where the images come from (the parameterisation) nor
what must match (the objective): it steps an optimiser over their tensors, checkpoints and resumes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gendistill.distill import distributed
from gendistill.errors import UserError, diverged
from gendistill.objectives import MatchContext, Objective, Regulariser, regularised
from gendistill.params import Parameterisation, Stages
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import all_finite, tune_cpu_allocator
from gendistill.store.checkpoint import (
    check_same_run,
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)


@dataclass
class Schedule:
    """How long and how fast: iterations, the learning rate of the synthetic data, checkpoint and
    validation cadence. ``eval_every`` evaluates on the validation split carved from training data, never
    the test. Stages (H-GLaD's walk) and snapshot selection are the parameterisation's
    (:meth:`Parameterisation.stages`); the optimiser is too (:meth:`Parameterisation.optimizer`)."""

    iterations: int
    lr: float
    checkpoint_every: int = 0
    eval_every: int = 0
    eval_epochs: int = 50
    eval_model: str = "convnet"


@dataclass
class History:
    losses: list[float] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    selected: list[dict] = field(default_factory=list)  # per stage: the snapshot kept and its score
    iteration_seconds: list[float] = field(default_factory=list)  # wall time of each iteration's steps


def _optimizer(params: Parameterisation, objective: Objective, schedule: Schedule) -> torch.optim.Optimizer:
    groups = params.param_groups(schedule.lr)
    groups += [{"params": [p], "lr": lr} for _, p, lr in objective.learnables()]
    return params.optimizer(groups)


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
        return {"score": self.score if self.state is not None else None, "iteration": self.iteration}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], info: dict) -> _Best:
        best = cls()
        score = info["score"]  # None (JSON's null): nothing scored yet
        best.score, best.iteration = float("inf") if score is None else score, info["iteration"]
        state = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")}
        best.state = state or None
        return best


def _validate(params: Parameterisation, ctx: MatchContext, schedule: Schedule, iteration: int) -> dict:
    from gendistill.evaluate import evaluate

    report = evaluate(
        params.to_image_set({}),
        ctx.dataset,
        models=[schedule.eval_model],
        runs=1,
        preset="quick",
        epochs=schedule.eval_epochs,
        split="val",
        seed=ctx.seed,
        augment="dsa" if ctx.augment else "none",
        progress=False,
    )
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
    regularisers: list[Regulariser] | tuple[Regulariser, ...] = (),
    run_config: dict | None = None,
) -> History:
    """Optimise ``params`` in place for ``schedule.iterations``; return the loss and validation history.

    ``on_iteration(done, params, history)`` runs after each iteration (snapshots, custom stopping); it
    returning True ends the run there, after that iteration's checkpoint. ``selector(params)`` scores
    snapshots when the parameterisation's stages select (lower is better). Each regulariser's weighted
    term is added to every loss the objective yields. ``run_config`` is recorded in checkpoints, and a
    resume under another config is refused.
    """
    tune_cpu_allocator()
    params.to(ctx.device)
    stages = params.stages(schedule.iterations)  # before a resume moves the parameterisation to a later stage
    history, start, best = History(), 0, _Best()
    resumed = None
    if resume and checkpoint_dir is not None:
        tensors, info = load_checkpoint(checkpoint_dir)
        check_same_run(info, run_config or {}, checkpoint_dir)
        # the parameterisation first: at a later H-GLaD stage its tensors have other shapes
        params.load_state_dict({k[len("params.") :]: v for k, v in tensors.items() if k.startswith("params.")})
        for name, p, _ in objective.learnables():
            p.data.copy_(tensors[f"objective.{name}"])
        for prefix, holder in _stateful(objective, regularisers):
            holder.restore_state({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, ctx)
        start, history = info["iteration"], History(**info["history"])
        best = _Best.restore(tensors, info["best"])
        resumed = tensors, info
    opt = _optimizer(params, objective, schedule)
    if resumed is not None:
        restore_optimizer(opt, resumed[0], resumed[1]["optimizer"])
    bar = progress_bar(
        range(start, schedule.iterations),
        initial=start,
        total=schedule.iterations,
        desc="distill",
        disable=not progress,
    )
    loop = _Loop(
        params, objective, ctx, schedule, stages, opt, best, history, list(regularisers), checkpoint_dir, run_config
    )
    try:
        loop.run(bar, on_iteration, selector)
    except RuntimeError as e:  # torch.OutOfMemoryError is one too
        if not _out_of_memory(e):
            raise
        raise UserError(
            f"out of memory at iteration {len(history.losses) + 1} ({str(e).splitlines()[0][:120]}); "
            "lower what one step holds: --chunk K renders K samples at a time (glad/hglad), or a "
            "smaller --real-batch or --ipc; checkpoints so far are kept for --resume"
        ) from None
    finally:
        bar.close()
    return history


def _out_of_memory(e: RuntimeError) -> bool:
    text = str(e)
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in text or "out of memory" in text


@dataclass
class _Loop:
    """The state one run's iterations share (the optimiser and the stage's best snapshot change per stage)."""

    params: Parameterisation
    objective: Objective
    ctx: MatchContext
    schedule: Schedule
    stages: Stages
    opt: torch.optim.Optimizer
    best: _Best
    history: History
    regularisers: list[Regulariser]
    checkpoint_dir: Path | None
    run_config: dict | None

    def run(self, iterations: Iterable[int], on_iteration: Callable | None, selector: Callable | None) -> None:
        params, schedule, stages, history = self.params, self.schedule, self.stages, self.history
        for it in iterations:
            if stages.every and it > 0 and it % stages.every == 0 and params.can_advance():
                _end_stage(params, self.best, history)
                params.advance()
                self.opt, self.best = _optimizer(params, self.objective, schedule), _Best()
            t0 = time.perf_counter()
            last = self.step(it)
            history.losses.append(last)
            history.iteration_seconds.append(time.perf_counter() - t0)
            history.seconds += history.iteration_seconds[-1]
            if hasattr(iterations, "set_postfix_str"):
                iterations.set_postfix_str(f"loss {last:.4g}", refresh=False)
            done = it + 1
            if selector is not None and stages.select_every and done % stages.select_every == 0:
                self.best.offer(selector(params), done, params)
            if schedule.eval_every and done % schedule.eval_every == 0:
                history.val.append(_validate(params, self.ctx, schedule, done))
                tqdm.write(f"iteration {done}: val acc {100 * history.val[-1]['val_acc']:.2f}%")
            stop = on_iteration is not None and on_iteration(done, params, history)
            if self.checkpoint_dir is not None and schedule.checkpoint_every and done % schedule.checkpoint_every == 0:
                self.save(done)
            if stop:
                break
        _end_stage(params, self.best, history)

    def save(self, done: int) -> None:
        _save(
            self.checkpoint_dir,
            self.params,
            self.objective,
            self.regularisers,
            self.opt,
            done,
            self.history,
            self.best,
            self.run_config,
        )

    def diverged(self, it: int, what: str) -> UserError:
        kept = self.checkpoint_dir if self.checkpoint_dir is not None and self.checkpoint_dir.is_dir() else None
        return diverged(
            f"iteration {it + 1}",
            what,
            self.history.losses,
            kept,
            "lower the learning rate (--lr; --lr-f/--lr-w for latents, --lr-g/--lr-codes for generators) and run again",
        )

    def step(self, it: int) -> float:
        """One iteration: every loss the objective yields, regularised, back-propagated and stepped. A loss
        or a learnable tensor that turns non-finite ends the run (:func:`diverged`) before anything of it is
        checkpointed."""
        last = 0.0
        self.params.begin_iteration(it)
        try:
            for loss in self.objective.losses(self.params, self.ctx, it):
                loss = regularised(loss, self.regularisers, self.params, self.ctx, it)
                last = float(loss.detach())
                if not math.isfinite(last):
                    raise self.diverged(it, f"the loss became {last}")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.params.finish_backward()
                if self.params.shared:
                    distributed.sum_gradients(self.params)
                self.opt.step()
                self.params.after_step()
                if not all_finite(self.params.parameters()):
                    raise self.diverged(it, "the synthetic set's tensors became non-finite")
        finally:
            self.params.end_iteration()
        return last


def _end_stage(params: Parameterisation, best: _Best, history: History) -> None:
    """Restore the stage's best snapshot, if one was scored, and record which it was."""
    if best.state is not None:
        params.load_state_dict(best.state)
        history.selected.append({**params.stage_info(), **best.info()})


def _stateful(objective: Objective, regularisers: Iterable[Regulariser]) -> list[tuple[str, Objective | Regulariser]]:
    """Where each holder of carried state (an online-trained network, a critic) keeps it in a checkpoint."""
    return [("state.objective.", objective)] + [(f"state.reg{i}.{r.name}.", r) for i, r in enumerate(regularisers)]


def _save(
    path: Path,
    params: Parameterisation,
    objective: Objective,
    regularisers: list[Regulariser],
    opt: torch.optim.Optimizer,
    iteration: int,
    history: History,
    best: _Best,
    run_config: dict | None,
) -> None:
    opt_tensors, opt_info = optimizer_tensors(opt)
    tensors = {f"params.{k}": v for k, v in params.state_dict().items()}
    tensors.update({f"objective.{name}": p for name, p, _ in objective.learnables()})
    for prefix, holder in _stateful(objective, regularisers):
        tensors.update({prefix + k: v for k, v in holder.carried_state().items()})
    tensors.update(opt_tensors)
    tensors.update(best.tensors())
    save_checkpoint(
        path,
        tensors,
        {
            "iteration": iteration,
            "optimizer": opt_info,
            "history": asdict(history),
            "best": best.info(),
            "run_config": run_config,
        },
    )
