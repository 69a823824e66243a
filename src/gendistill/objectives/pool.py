"""Logit matching against a pool of networks trained online on real data (DiM, Wang et al. 2023).

Unlike DM and DC, whose networks are fresh every iteration, DiM matches under a network that learns: one
is drawn from a pool of architectures, trained a few SGD steps on real data every iteration, and replaced
by a fresh draw every ``redraw_every`` iterations (DiM draws one per epoch of its real-data loader). That
network and its momentum are state carried from one iteration to the next, so the objective hands them to
the engine's checkpoints (:meth:`Objective.carried_state`) and a resumed run stays exact. Every random
draw (the architecture, its initial weights, the real batches, the augmentation) is still a pure function
of (seed, iteration).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gendistill.models import Classifier, create_model, expand_models
from gendistill.objectives.base import MatchContext, Objective, ObjectiveConfig
from gendistill.params import Parameterisation
from gendistill.runtime import derived_seed
from gendistill.store.checkpoint import load_optimizer_tensors, optimizer_tensors
from gendistill.validate import limit


@dataclass(frozen=True)
class PoolConfig(ObjectiveConfig):
    """``pool``: the networks to draw from, separated by ``+`` (``--set pool=convnet+resnet18``; a comma
    works from Python) or a named pool; ``train_steps`` SGD steps on
    ``train_batch`` augmented real images per iteration (lr ``net_lr``, momentum 0.9, weight decay 5e-4,
    the evaluation protocol's optimiser, as DiM trains its pool with its evaluation settings);
    ``redraw_every``: iterations a drawn network serves; ``weight``: DiM's 0.01 on the mean squared
    log-softmax difference."""

    pool: str = "convnet+resnet18"
    train_steps: int = limit(1, ge=0, le=10_000)
    train_batch: int = limit(256, ge=1)
    net_lr: float = limit(0.01, gt=0)
    redraw_every: int = limit(100, ge=1)
    weight: float = limit(0.01, gt=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        expand_models(self.networks)  # an unknown name fails here, before any work

    @property
    def networks(self) -> list[str]:
        # split on + or , outside brackets: "convnet[width=16,depth=2]+resnet18" is two networks
        return [n.strip() for n in re.split(r"[+,](?![^\[]*\])", self.pool) if n.strip()]


class PoolMatching(Objective):
    """Loss = weight * mean over the synthetic images i and the classes k of
    (log softmax f(a(x_i))_k - log softmax f(a(r_i))_k)^2, f the pool network of this iteration, r_i a
    real image of x_i's class drawn for this iteration, a one DSA draw shared by the pair's class.

    DiM pairs each generated image with a real image of the same label this way; in expectation the
    gradient on x_i is that of matching x_i's log-probabilities to the real class's mean. Real and
    synthetic images of a class pass through f separately (train mode; batch norm sees one class at a
    time, as in DM). The real side carries no graph.
    """

    name = "pool"
    Config = PoolConfig
    settings: PoolConfig

    def __init__(self, ipc: int, config: PoolConfig | None = None) -> None:
        super().__init__(ipc, config)
        self._net: Classifier | None = None
        self._opt: torch.optim.SGD | None = None
        self._drawn = -1  # the redraw block the current network belongs to

    # --- the online-trained network ---
    def _network(self, ctx: MatchContext, iteration: int) -> Classifier:
        block = iteration // self.settings.redraw_every
        if self._net is None or block != self._drawn:
            self._build(ctx, block)
        return self._net

    def _build(self, ctx: MatchContext, block: int) -> None:
        networks = expand_models(self.settings.networks)
        g = torch.Generator().manual_seed(derived_seed(ctx.seed, block, -11))
        name = networks[int(torch.randint(len(networks), (1,), generator=g))]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(ctx.seed, block, -12))
            d = ctx.dataset
            net = create_model(name, d.channels, d.num_classes, d.image_size).to(ctx.device)
        self._net, self._drawn, self.network_name = net, block, name
        self._opt = torch.optim.SGD(net.parameters(), lr=self.settings.net_lr, momentum=0.9, weight_decay=5e-4)

    def _train(self, ctx: MatchContext, iteration: int) -> None:
        net, d = self._net, ctx.dataset
        net.train().requires_grad_(True)
        for step in range(self.settings.train_steps):
            g = ctx.rng(iteration, -13, step)
            idx = torch.randint(len(d.train_labels), (self.settings.train_batch,), generator=g)
            x, y = d.train_images[idx].to(ctx.device), d.train_labels[idx].to(ctx.device)
            if ctx.augment:
                x = ctx.augment(x, generator=g)
            with ctx.autocast():
                loss = F.cross_entropy(net(x).float(), y)
            self._opt.zero_grad(set_to_none=True)
            loss.backward()
            self._opt.step()
        net.requires_grad_(False)

    # --- the loss ---
    def losses(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> Iterator[torch.Tensor]:
        net = self._network(ctx, iteration)
        self._train(ctx, iteration)
        syn_all = params.render_classes(ctx.classes)
        syn_labels = params.labels[params.class_mask(ctx.classes)]
        total, count = syn_all.new_zeros(()), 0
        for c in ctx.classes:
            syn = syn_all[syn_labels == c]
            g = ctx.rng(iteration, c)
            real = ctx.real_batch_of(c, g, size=len(syn))
            if ctx.augment:
                real, syn = ctx.augment.siamese(real, syn, generator=g)
            with ctx.autocast():
                with torch.no_grad():
                    target = F.log_softmax(net(real).float(), dim=1)
                out = F.log_softmax(net(syn).float(), dim=1)
            total = total + ((out - target) ** 2).sum()
            count += out.numel()
        yield self.settings.weight * total / count

    # --- what a resume needs ---
    def carried_state(self) -> dict[str, torch.Tensor]:
        if self._net is None:
            return {}
        state = {f"net.{k}": v for k, v in self._net.state_dict().items()}
        state.update(optimizer_tensors(self._opt, "opt")[0])
        return {**state, "drawn": torch.tensor(self._drawn)}

    def restore_state(self, state: dict[str, torch.Tensor], ctx: MatchContext) -> None:
        if not state:
            return
        self._build(ctx, int(state["drawn"]))
        self._net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        load_optimizer_tensors(self._opt, state, "opt")

    def config(self) -> dict:
        return {**super().config(), "networks": self.settings.networks}
