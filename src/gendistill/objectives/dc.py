"""Gradient matching (DC, Zhao et al. 2021) and DSA (DC with siamese augmentation)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from gendistill.objectives.base import MatchContext, Objective, ObjectiveConfig
from gendistill.params import Parameterisation
from gendistill.validate import limit

# The published (outer, inner) loop counts by IPC; other IPCs take the nearest published setting below.
LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def default_loops(ipc: int) -> tuple[int, int]:
    return LOOPS[max(k for k in LOOPS if k <= max(ipc, 1))]


def gradient_distance(syn: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """DC's layer-wise distance: per output channel, 1 - cosine similarity; biases are skipped."""
    total = syn[0].new_zeros(())
    for gs, gr in zip(syn, real):
        if gs.ndim == 1:
            continue
        gs, gr = gs.reshape(gs.shape[0], -1), gr.reshape(gr.shape[0], -1)
        cos = (gs * gr).sum(1) / (gs.norm(dim=1) * gr.norm(dim=1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


@dataclass(frozen=True)
class DCConfig(ObjectiveConfig):
    """``outer_loop``/``inner_loop``: None takes the published counts for the IPC (:data:`LOOPS`)."""

    outer_loop: int | None = limit(None, ge=1, le=10_000)
    inner_loop: int | None = limit(None, ge=0, le=10_000)
    net_lr: float = limit(0.01, gt=0)
    net_batch: int = limit(256, ge=1)


class GradientMatching(Objective):
    """For each outer loop: match per-class gradients of a network; then train that network ``inner``
    steps on the (detached) synthetic set. ``augment`` on the context makes it DSA."""

    name = "dc"
    Config = DCConfig
    graphs_per_image = 3  # the forward, its gradient with create_graph, and the backward through both
    settings: DCConfig

    def __init__(self, ipc: int = 10, config: DCConfig | None = None) -> None:
        config = config or DCConfig()
        outer, inner = default_loops(ipc)
        super().__init__(
            ipc, replace(config, outer_loop=config.outer_loop or outer, inner_loop=config.inner_loop or inner)
        )
        self.outer, self.inner = self.settings.outer_loop, self.settings.inner_loop
        self.net_lr, self.net_batch = self.settings.net_lr, self.settings.net_batch

    def losses(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> Iterator[torch.Tensor]:
        net = ctx.fresh_model(iteration)
        weights = list(net.parameters())
        net_opt = torch.optim.SGD(weights, lr=self.net_lr)
        for outer in range(self.outer):
            syn_all = params.render_classes(ctx.classes)
            syn_labels = params.labels[params.class_mask(ctx.classes)]
            loss = syn_all.new_zeros(())
            for c in ctx.classes:
                g = ctx.rng(iteration, outer, c)
                real, syn = ctx.real_batch_of(c, g), syn_all[syn_labels == c]
                if ctx.augment:
                    real, syn = ctx.augment.siamese(real, syn, generator=g)
                target_r = torch.full((len(real),), c, device=real.device)
                target_s = torch.full((len(syn),), c, device=syn.device)
                with ctx.autocast():  # logits back to fp32 for the loss; the gradients are fp32 like the weights
                    out_r, out_s = net(real).float(), net(syn).float()
                g_real = torch.autograd.grad(F.cross_entropy(out_r, target_r), weights)
                g_real = [t.detach() for t in g_real]
                g_syn = torch.autograd.grad(F.cross_entropy(out_s, target_s), weights, create_graph=True)
                loss = loss + gradient_distance(list(g_syn), g_real)
            yield loss
            if outer == self.outer - 1:
                break
            self._train_net(net, net_opt, params, ctx, iteration, outer)

    def _train_net(self, net, opt, params: Parameterisation, ctx: MatchContext, iteration: int, outer: int) -> None:
        """``inner`` epochs of plain training on the current synthetic images (no graph to them)."""
        with torch.no_grad():
            x_all, y_all = params.render().detach(), params.labels
        g = ctx.rng(iteration, outer, -2)
        for _ in range(self.inner):
            order = torch.randperm(len(x_all), generator=g).to(x_all.device)
            for start in range(0, len(order), self.net_batch):
                idx = order[start : start + self.net_batch]
                x = ctx.augment(x_all[idx], g) if ctx.augment else x_all[idx]
                with ctx.autocast():
                    logits = net(x).float()
                loss = F.cross_entropy(logits, y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
