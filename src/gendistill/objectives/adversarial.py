"""A GAN term as a regulariser: synthetic images pushed toward what a critic trained alongside takes for
real (DiM fine-tunes its generator with its GAN loss beside the matching loss; here any
parameterisation can take the term, a generator or plain pixels)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from gendistill.errors import UserError
from gendistill.objectives.regularisers import REGULARISERS, Regulariser
from gendistill.priors.base import from_normalized
from gendistill.priors.stylegan import StyleGANConfig
from gendistill.priors.train import Discriminator, GanRecipe, critic_optimizer
from gendistill.store.checkpoint import load_optimizer_tensors, optimizer_tensors

if TYPE_CHECKING:
    from gendistill.objectives.base import MatchContext
    from gendistill.params import Parameterisation


@REGULARISERS.register("gan")
class AdversarialRealism(Regulariser):
    """term = mean over this iteration's synthetic images x_i of softplus(-D(x_i, y_i)), the
    non-saturating generator loss the shipped prior was trained with (``gendistill prior train``).

    D is a class-conditional critic of the prior trainer's architecture (residual blocks, projection
    head), trained alongside: ``WARMUP`` steps at its first use (the shipped prior comes without its
    critic, so one is fitted to the starting images first), then one step per iteration, each on
    ``batch`` real images of the classes being distilled against the current synthetic images
    (detached): the logistic loss softplus(D(x)) + softplus(-D(r)) with lazy R1 on the real images, the
    prior trainer's recipe (Adam lr 2e-3, betas (0, 0.99)). The critic is state carried between
    iterations, so it goes into the run's checkpoints. Not sharded: under torchrun each rank would train
    its own critic, so the term refuses to run there.
    """

    name = "gan"
    WARMUP = 200

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.recipe = GanRecipe()
        self._critic: Discriminator | None = None
        self._opt: torch.optim.Adam | None = None
        self._steps, self._trained_at = 0, -1

    def _build(self, ctx: MatchContext) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise UserError("--reg gan trains one critic in one process; run it without torchrun")
        d = ctx.dataset
        cfg = StyleGANConfig(num_classes=d.num_classes, image_size=d.image_size, image_channels=d.channels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed + 31)
            self._critic = Discriminator(cfg, self.recipe.d_channel_base, self.recipe.d_channel_max).to(ctx.device)
        self._opt = critic_optimizer(self._critic, self.recipe)

    def _real(self, ctx: MatchContext, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        d = ctx.dataset
        pool = torch.cat([d.class_indices("train")[c] for c in ctx.classes])
        idx = pool[torch.randint(len(pool), (self.recipe.batch,), generator=g)]
        images = from_normalized(d.train_images[idx], d.mean, d.std).clamp(-1, 1)
        return images.to(ctx.device), d.train_labels[idx].to(ctx.device)

    def _critic_step(self, fake: torch.Tensor, labels: torch.Tensor, ctx: MatchContext, g: torch.Generator) -> None:
        real, real_labels = self._real(ctx, g)
        self._critic.requires_grad_(True)
        r1_step = self._steps % self.recipe.r1_every == 0
        real.requires_grad_(r1_step)
        real_logits = self._critic(real, real_labels)
        loss = F.softplus(self._critic(fake.detach(), labels)).mean() + F.softplus(-real_logits).mean()
        if r1_step:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            loss = loss + grad.square().sum((1, 2, 3)).mean() * (self.recipe.r1_gamma / 2 * self.recipe.r1_every)
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        self._critic.requires_grad_(False)
        self._steps += 1

    def term(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> torch.Tensor:
        images, labels = ctx.synthetic_images(params, iteration)
        fake = from_normalized(images, ctx.dataset.mean, ctx.dataset.std)
        if self._critic is None:
            self._build(ctx)
        if self._trained_at != iteration:  # once per iteration, however many losses the objective yields
            for k in range(self.WARMUP if self._steps == 0 else 1):
                self._critic_step(fake, labels, ctx, ctx.rng(iteration, -31, k))
            self._trained_at = iteration
        return F.softplus(-self._critic(fake, labels)).mean()

    # --- what a resume needs ---
    def carried_state(self) -> dict[str, torch.Tensor]:
        if self._critic is None:
            return {}
        state = {f"critic.{k}": v for k, v in self._critic.state_dict().items()}
        state.update(optimizer_tensors(self._opt, "opt")[0])
        return {**state, "steps": torch.tensor(self._steps), "trained_at": torch.tensor(self._trained_at)}

    def restore_state(self, state: dict[str, torch.Tensor], ctx: MatchContext) -> None:
        if not state:
            return
        self._build(ctx)
        self._critic.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("critic.")})
        load_optimizer_tensors(self._opt, state, "opt")
        self._steps, self._trained_at = int(state["steps"]), int(state["trained_at"])
