"""Training the built-in prior: non-saturating GAN loss, lazy R1 on real images, an EMA generator.

Resumable and reproducible: every random draw of step ``t`` comes from a generator seeded by
``(seed, t)``, and checkpoints hold the networks, the EMA, both optimisers and the step, so a resumed
run takes exactly the steps an uninterrupted one would.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.priors.base import from_normalized, to_normalized
from gendistill.priors.stylegan import LRELU_GAIN, EqualLinear, StyleGAN, StyleGANConfig, channels_at
from gendistill.priors.trainer import PriorTrainer
from gendistill.runtime import autocast, derived_seed, saved_bytes
from gendistill.store.checkpoint import load_checkpoint, optimizer_tensors, restore_optimizer, save_checkpoint
from gendistill.validate import MAX_ITERATIONS, check_fields, limit


@dataclass
class GanRecipe:
    steps: int = limit(4000, ge=1, le=MAX_ITERATIONS, help="training steps")
    batch: int = limit(32, ge=1, help="images per step")
    lr: float = limit(2e-3, gt=0, help="learning rate")
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = limit(0.1, ge=0, help="gan: weight of the R1 penalty on real images")
    # lazy regularisation (StyleGAN2): R1 every k steps, weighted by k
    r1_every: int = limit(16, ge=1, help="gan: steps between R1 penalties (lazy regularisation)")
    ema_half_life_images: int = limit(10_000, ge=0, help="gan: half-life of the generator's EMA, in images")
    d_channel_base: int = limit(512, ge=1, help="gan: the critic's channel base (default: the generator's)")
    d_channel_max: int = limit(64, ge=1, help="gan: the critic's channel cap (default: the generator's)")
    checkpoint_every: int = limit(250, ge=1, help="steps between checkpoints")
    sample_every: int = limit(500, ge=1, help="steps between sample grids")

    def __post_init__(self) -> None:
        check_fields(self)


class EqualConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale, self.padding = 1 / math.sqrt(c_in * kernel * kernel), kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


class Discriminator(nn.Module):
    """Residual downsampling blocks to 4x4, then a projection head for the class (Miyato & Koyama 2018)."""

    def __init__(self, cfg: StyleGANConfig, channel_base: int, channel_max: int) -> None:
        super().__init__()
        ch = functools.partial(channels_at, base=channel_base, cap=channel_max)
        res = cfg.resolution
        self.pad = res - cfg.image_size
        self.from_pixels = EqualConv(cfg.image_channels, ch(res), 1)
        blocks = []
        while res > 4:
            blocks.append(
                nn.ModuleList(
                    [
                        EqualConv(ch(res), ch(res), 3),
                        EqualConv(ch(res), ch(res // 2), 3),
                        EqualConv(ch(res), ch(res // 2), 1),
                    ]
                )
            )
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        self.fc = EqualLinear(ch(4) * 16, ch(4))
        self.out = EqualLinear(ch(4), 1)
        self.embed = EqualLinear(cfg.num_classes, ch(4))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.pad:  # back to the synthesis resolution, padding with the background value
            m = self.pad // 2
            images = F.pad(images, (m, self.pad - m, m, self.pad - m), value=-1.0)
        x = _act(self.from_pixels(images))
        for conv1, conv2, skip in self.blocks:
            y = _act(conv2(_act(conv1(x))))
            y = F.avg_pool2d(y, 2)
            x = (y + F.avg_pool2d(skip(x), 2)) / math.sqrt(2)
        h = _act(self.fc(x.flatten(1)))
        c = self.embed(F.one_hot(labels, self.embed.weight.shape[1]).float())
        return self.out(h).squeeze(1) + (h * c).sum(1) / math.sqrt(h.shape[1])


def critic_optimizer(critic: nn.Module, recipe: GanRecipe) -> torch.optim.Adam:
    """The critic's Adam, with StyleGAN2's lazy-regularisation correction of lr and betas for R1 every k steps."""
    r1_ratio = recipe.r1_every / (recipe.r1_every + 1)
    betas = tuple(b**r1_ratio for b in recipe.betas)
    return torch.optim.Adam(critic.parameters(), lr=recipe.lr * r1_ratio, betas=betas)


class GanTrainer(PriorTrainer):
    """Holds G, D, the EMA generator and their optimisers; ``run`` trains to ``recipe.steps``."""

    def __init__(
        self,
        dataset: ImageDataset,
        cfg: StyleGANConfig,
        recipe: GanRecipe,
        seed: int,
        device: torch.device,
        amp: torch.dtype | None = None,
    ) -> None:
        """``amp``: the autocast dtype of the G and D passes (bf16), or None for fp32. Weights, Adam's state,
        the EMA generator and the R1 penalty stay fp32: the penalty differentiates D's gradient, a second
        derivative that bf16's 8-bit mantissa would turn into noise."""
        self.dataset, self.cfg, self.recipe, self.seed, self.device = dataset, cfg, recipe, seed, device
        self.amp = amp
        torch.manual_seed(seed)
        self.G, self.D = StyleGAN(cfg).to(device), Discriminator(cfg, recipe.d_channel_base, recipe.d_channel_max)
        self.D.to(device)
        self.G_ema = StyleGAN(cfg).to(device).requires_grad_(False)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=recipe.lr, betas=recipe.betas)
        self.opt_d = critic_optimizer(self.D, recipe)
        self.step, self.seconds = 0, 0.0
        # real images in the prior's range, kept once (Fashion-MNIST: 180 MB as float32)
        self.real = from_normalized(dataset.train_images, dataset.mean, dataset.std).clamp(-1, 1)
        self.labels = dataset.train_labels

    def parameters(self) -> list[torch.Tensor]:
        return [*self.G.parameters(), *self.D.parameters()]

    def bytes_per_image(self) -> int:
        labels = self.labels[:2].to(self.device)
        g = torch.Generator().manual_seed(0)
        held, _ = saved_bytes(lambda: self.D(self._fake(labels, g)[0], labels))
        return held // 2 * 3  # the critic's step, the generator's, and R1's second derivative

    # --- one step ---
    def _batch(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.real), (self.recipe.batch,), generator=g)
        return self.real[idx].to(self.device), self.labels[idx].to(self.device)

    def _fake(self, labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(len(labels), self.cfg.z_dim, generator=g).to(self.device)
        ws = self.G.mapping(z, labels)
        return self.G.suffix(self.G.synthesis_input(ws), ws, 0), ws

    def train_step(self) -> dict[str, float]:
        g = torch.Generator().manual_seed(derived_seed(self.seed, self.step))
        real, real_labels = self._batch(g)
        fake_labels = torch.randint(self.cfg.num_classes, (self.recipe.batch,), generator=g).to(self.device)
        # discriminator
        self.D.requires_grad_(True)
        with torch.no_grad(), autocast(self.device, self.amp):
            fake, _ = self._fake(fake_labels, g)
        fake = fake.float()
        r1_step = self.step % self.recipe.r1_every == 0
        real.requires_grad_(r1_step)
        with autocast(self.device, None if r1_step else self.amp):
            real_logits = self.D(real, real_labels).float()
        with autocast(self.device, self.amp):
            fake_logits = self.D(fake, fake_labels).float()
        loss_d = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        if r1_step:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            r1 = grad.square().sum((1, 2, 3)).mean()
            loss_d = loss_d + r1 * (self.recipe.r1_gamma / 2 * self.recipe.r1_every)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # generator
        self.D.requires_grad_(False)
        with autocast(self.device, self.amp):
            fake, ws = self._fake(fake_labels, g)
            logits = self.D(fake, fake_labels).float()
        loss_g = F.softplus(-logits).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self._update_ema(ws.detach()[:, 0].float())
        self.step += 1
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    @torch.no_grad()
    def _update_ema(self, w: torch.Tensor) -> None:
        beta = 0.5 ** (self.recipe.batch / self.recipe.ema_half_life_images)
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        self.G.mapping_net.w_avg.lerp_(w.mean(0), 1 - 0.995)
        self.G_ema.mapping_net.w_avg.copy_(self.G.mapping_net.w_avg)

    # --- persistence: the engine's checkpoint format, one folder replaced in one rename ---
    def save_checkpoint(self, folder: Path, history: list[dict]) -> None:
        tensors, info = (
            {},
            {
                "step": self.step,
                "seconds": self.seconds,
                "history": history,
                "config": asdict(self.cfg),
                "recipe": asdict(self.recipe),
                "precision": self.precision,
            },
        )
        for name, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            opt_tensors, info[name] = optimizer_tensors(opt, name)
            tensors.update(opt_tensors)
        save_checkpoint(folder, tensors, info)

    @property
    def precision(self) -> str:
        return "fp32" if self.amp is None else "bf16"

    def load_checkpoint(self, folder: Path) -> list[dict]:
        tensors, info = load_checkpoint(folder)
        trained = info.get("precision", "fp32")
        if trained != self.precision:
            raise UserError(
                f"{folder} was trained in {trained}; resume it with --precision {trained}, or pass "
                "--force to start over"
            )
        for name, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            module.load_state_dict({k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")})
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            restore_optimizer(opt, tensors, info[name], name)
        self.step, self.seconds = info["step"], info["seconds"]
        return info["history"]

    @torch.no_grad()
    def sample_grid(self, path: Path, per_class: int = 10) -> None:
        from gendistill.report import class_grid, save_png, to_uint8

        labels = torch.arange(self.cfg.num_classes).repeat_interleave(per_class)
        images = self.G_ema.sample(labels.to(self.device), torch.Generator().manual_seed(self.seed)).cpu()
        pixels = to_uint8(
            to_normalized(images, self.dataset.mean, self.dataset.std), self.dataset.mean, self.dataset.std
        )
        save_png(class_grid(pixels, labels.numpy(), self.cfg.num_classes), path)
