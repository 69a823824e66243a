"""Trajectory matching (MTT, Cazenavette et al. 2022).

Each iteration picks an expert and a start epoch, places a student at the expert's parameters there,
trains it ``syn_steps`` steps on the synthetic images with a learnable learning rate (unrolled with
``torch.func.functional_call``), and returns ||student_end - expert_target||^2 / ||expert_start -
expert_target||^2. The student is built from the same architecture spec as the experts and its
parameter names and shapes are checked against the trajectory's recorded order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.experts import Trajectories, param_layout, unflatten
from gendistill.objectives.base import MatchContext, Objective, ObjectiveConfig
from gendistill.params import Parameterisation
from gendistill.validate import limit


@dataclass(frozen=True)
class MTTConfig(ObjectiveConfig):
    experts: str | None = None  # a folder from 'gendistill experts'
    syn_steps: int = limit(20, ge=1, le=10_000)
    expert_epochs: int = limit(2, ge=1)
    max_start_epoch: int = limit(10, ge=0)
    lr_init: float = limit(0.01, gt=0)
    lr_lr: float = limit(1e-5, gt=0)
    batch_syn: int | None = limit(None, ge=1)  # None: every synthetic image in each student step


class TrajectoryMatching(Objective):
    """MTT (Cazenavette et al. 2022): a student trained ``syn_steps`` on the synthetic set from an expert's
    epoch should land where the expert was ``expert_epochs`` later."""

    name = "mtt"
    Config = MTTConfig
    settings: MTTConfig

    def __init__(self, ipc: int = 10, config: MTTConfig | None = None) -> None:
        super().__init__(ipc, config)
        c = self.settings
        experts, syn_steps, expert_epochs, max_start_epoch = c.experts, c.syn_steps, c.expert_epochs, c.max_start_epoch
        lr_init, lr_lr, batch_syn = c.lr_init, c.lr_lr, c.batch_syn
        if experts is None:
            raise UserError("MTT needs expert trajectories: pass --experts DIR (made by 'gendistill experts')")
        self.trajectories = Trajectories(experts)
        if max_start_epoch + expert_epochs > self.trajectories.epochs:
            most = self.trajectories.epochs - expert_epochs
            fix = (
                f"pass --set max_start_epoch={most}"
                if most >= 0
                else f"pass --set expert_epochs={self.trajectories.epochs}"
            )
            raise UserError(
                f"max_start_epoch {max_start_epoch} + expert_epochs {expert_epochs} exceeds the "
                f"{self.trajectories.epochs} epochs the experts in {experts} were trained for; {fix}, "
                "or train longer experts (gendistill experts --epochs N)"
            )
        self.syn_steps, self.expert_epochs, self.max_start = syn_steps, expert_epochs, max_start_epoch
        self.batch_syn, self.lr_lr = batch_syn, lr_lr
        self.syn_lr = nn.Parameter(torch.tensor(float(lr_init)))
        self.graphs_per_image = 2 * syn_steps  # every unrolled student step keeps its forward and gradient
        self.experts_dir = str(experts)

    def config(self) -> dict:
        return {**super().config(), "num_experts": len(self.trajectories)}

    def learnables(self) -> list[tuple[str, nn.Parameter, float]]:
        return [("syn_lr", self.syn_lr, self.lr_lr)]

    def artifact_lr(self) -> torch.Tensor | None:
        return self.syn_lr.detach().clone()

    def check_student(self, net: nn.Module, dataset: ImageDataset) -> None:
        """Student and experts must agree on the data and on the order and shape of every parameter."""
        made_on = self.trajectories.dataset
        if made_on is not None and made_on != dataset.name:
            raise UserError(
                f"the experts in {self.experts_dir} were trained on {made_on}, this run distils {dataset.name}; "
                f"make experts on {dataset.name} with gendistill experts --dataset {dataset.name}"
            )
        mine = [(n, list(s)) for n, s in param_layout(net)]
        if mine != self.trajectories.layout:
            raise UserError(
                f"the matching network's parameters differ from the experts' ({self.experts_dir}); "
                "use the model the experts were trained with"
            )

    def losses(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> Iterator[torch.Tensor]:
        g = ctx.rng(iteration)
        net = ctx.fresh_model(iteration)
        self.check_student(net, ctx.dataset)
        expert = int(torch.randint(len(self.trajectories), (1,), generator=g))
        start_epoch = int(torch.randint(self.max_start + 1, (1,), generator=g))
        start = self.trajectories.params(expert, start_epoch).to(ctx.device)
        target = self.trajectories.params(expert, start_epoch + self.expert_epochs).to(ctx.device)
        buffers = dict(net.named_buffers())
        images, labels = params.render(), params.labels
        batch = self.batch_syn or len(images)
        student = start.clone().requires_grad_(True)
        for _ in range(self.syn_steps):
            idx = torch.randperm(len(images), generator=g)[:batch].to(images.device)
            x = ctx.augment(images[idx], g) if ctx.augment else images[idx]
            with ctx.autocast():  # the student's parameters stay fp32; only its forward runs in bf16
                out = functional_call(net, {**unflatten(student, self.trajectories.layout), **buffers}, (x,)).float()
            grad = torch.autograd.grad(F.cross_entropy(out, labels[idx]), student, create_graph=True)[0]
            student = student - self.syn_lr * grad
        yield ((student - target) ** 2).sum() / ((start - target) ** 2).sum()
