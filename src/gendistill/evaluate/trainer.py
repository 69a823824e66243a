"""The evaluation trainer: the hot loop of the whole project.

Kept fast on CPU without changing the recipe (benchmarks/bench_eval_trainer.py measures it):
- large activations are recycled by the allocator instead of page-faulted in anew each step
  (``runtime.tune_cpu_allocator``), the largest single gain on CPU;
- data stays in memory as one tensor; batches are index gathers, no DataLoader or per-sample collation;
- ``torch.compile`` fuses the element-wise tail of every conv block (norm, activation, pooling) in both
  passes, where eager mode makes one memory pass per op; it is used when the run is long enough to repay
  the compile (see ``should_compile``);
- bf16 autocast only where the hardware runs bf16 natively (AMX / CUDA): emulated bf16 is slower;
- test accuracy in large inference-mode batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.augment import DSA
from gendistill.evaluate.recipe import TrainRecipe
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import autocast, tune_cpu_allocator

RECOMPILE_LIMIT = 64  # compiled variants kept per code object; see maybe_compile
COMPILE_MIN_STEPS = 100  # below this, eager is faster than compile + run (compiled graphs are cached on disk)
# On the 2-core CPU, compiled ConvNet-3 steps on real images were 1.2x faster at batch 100, 1.28x at 256


class TrainingData(Protocol):
    """Anything the evaluator can train on: fixed tensors, or samples drawn anew each epoch."""

    def epoch(self, epoch: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...


class Relabeler(Protocol):
    """Soft labels for a training batch as it is seen (after augmentation): a teacher's tempered softmax.

    The student's logits are divided by the same ``temperature`` before the soft cross-entropy (knowledge
    distillation's convention, as SRe2L and RDED train on their sets)."""

    temperature: float

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


def should_compile(setting: bool | str, steps: int, batch: int, device: torch.device) -> bool:
    if setting == "auto":
        return steps >= COMPILE_MIN_STEPS and batch >= 32 and hasattr(torch, "compile")
    return bool(setting)


def maybe_compile(
    model: nn.Module, setting: bool | str, recipe: TrainRecipe, num_images: int, device: torch.device
) -> nn.Module:
    """The module to call: ``torch.compile(model)`` (sharing its parameters) or ``model`` itself.

    New instances of the same architecture reuse the compiled code, so the cost is paid once a process.
    """
    steps = recipe.epochs * -(-num_images // recipe.batch_size)
    batch = min(num_images, recipe.batch_size)
    if not should_compile(setting, steps, batch, device):
        return model
    # Every architecture built on models.base shares one ``forward`` code object, and each adds cache
    # entries (training and no-grad testing, input shapes): a cross-architecture evaluation passed
    # dynamo's default limit of 8 and the later architectures silently fell back to eager mode.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(model)


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if targets.dtype.is_floating_point:  # soft labels
        return torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean()
    return F.cross_entropy(logits, targets)


def weight_ema(model: nn.Module, beta: float) -> torch.optim.swa_utils.AveragedModel:
    """An average of ``model``'s weights, updated after every step (buffers follow the live model).

    The decay ramps up as ``n / (n + 1)`` before reaching ``beta`` (GLaD's ``ema_pytorch`` setting,
    power 1): the first ~1/(1-beta) steps are a plain running mean. A fixed decay from the first step
    would keep 0.995^100 = 61 % of the random initial weights after the 100 steps that 100 epochs on
    IPC 10 take.
    """

    def average(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        decay = min(beta, float(n) / (float(n) + 1.0))
        return avg.lerp(new, 1.0 - decay)

    return torch.optim.swa_utils.AveragedModel(model, avg_fn=average)


def train_classifier(
    model: nn.Module,
    data: TrainingData,
    recipe: TrainRecipe,
    generator: torch.Generator,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    base_lr: float | None = None,
    forward: nn.Module | None = None,
    on_epoch: Callable[[int], None] | None = None,
    on_batch: Callable[[], None] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    relabel: Relabeler | None = None,
) -> nn.Module:
    """Train ``model`` in place with ``recipe``; every random draw comes from ``generator``.

    ``relabel`` replaces the set's labels by soft labels computed on every augmented batch (the ``soft``
    protocol); without it the set's own (hard or stored soft) labels are used.
    ``forward`` is what computes the logits, ``model`` or a compiled wrapper of it (``maybe_compile``).
    ``optimizer`` continues an existing optimiser (its momentum), e.g. when training epoch by epoch.
    Returns the module to test: ``forward``, or the weight average when the recipe has ``ema``.
    """
    model.to(device).train()
    augment = DSA(recipe.augment) if recipe.augment != "none" else None
    opt = optimizer or recipe.make_optimizer(model.parameters(), base_lr)
    tune_cpu_allocator()
    forward = model if forward is None else forward
    ema = weight_ema(model, recipe.ema) if recipe.ema else None
    x_all, y_all = data.epoch(0, generator)
    for epoch in range(recipe.epochs):
        if epoch:
            x_all, y_all = data.epoch(epoch, generator)
        for group in opt.param_groups:
            group["lr"] = recipe.lr_at(epoch, base_lr)
        x_all, y_all = x_all.to(device), y_all.to(device)
        order = torch.randperm(len(x_all), generator=generator).to(device)
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start : start + recipe.batch_size]
            x = x_all[idx]
            if augment is not None:
                x = augment(x, generator)
            with autocast(device, amp_dtype):
                if relabel is None:
                    loss = _loss(forward(x), y_all[idx])
                else:
                    loss = _loss(forward(x).float() / relabel.temperature, relabel(x))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(model)
            if on_batch is not None:
                on_batch()
        if on_epoch is not None:
            on_epoch(epoch)
    return forward if ema is None else ema


def batches(num_images: int, recipe: TrainRecipe) -> int:
    """Optimiser steps of a whole training: what a progress bar counts (an epoch can be minutes)."""
    return math.ceil(num_images / recipe.batch_size) * recipe.epochs


def trained_with_progress(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    recipe: TrainRecipe,
    generator: torch.Generator,
    device: torch.device,
    desc: str,
    amp_dtype: torch.dtype | None = None,
) -> nn.Module:
    """:func:`train_classifier` on fixed images with a bar of its batches (teachers and feature networks
    train for minutes on a full training split, which an epoch counter would leave silent)."""
    from gendistill.artifacts import ImageSet

    data = ImageSet(images, labels)
    with progress_bar(total=batches(len(images), recipe), desc=desc, unit="batch") as bar:
        return train_classifier(model, data, recipe, generator, device, amp_dtype, on_batch=bar.update)


@torch.inference_mode()
def accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    batch_size: int = 64,  # small batches stay in cache: ~2x faster than 1000 on a 2-core CPU
) -> float:
    tune_cpu_allocator()
    model.to(device).eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            pred = model(x).argmax(1)
        correct += int((pred.cpu() == labels[start : start + batch_size]).sum())
    return correct / max(1, len(images))
