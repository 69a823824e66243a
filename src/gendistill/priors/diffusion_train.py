"""Training gendistill's own diffusion prior: a small diffusers ``UNet2DConditionModel`` on a dataset's
training images **without their labels** (as Stable Diffusion never saw the benchmark's labels), conditioned
on K tokens from a :class:`~gendistill.priors.token_encoder.TokenEncoder` trained jointly.

Per step: a batch of images, their encoder tokens (replaced by the null, all-zero conditioning with
probability ``cond_drop``, so the model also learns the unconditional score classifier-free guidance needs),
a uniform random timestep and Gaussian noise per image, the epsilon-prediction MSE; AdamW with a linear
warm-up, gradient clipping, an EMA of both networks (what is exported).

Resumable and reproducible like the GAN prior's trainer: every random draw of step ``t`` comes from a
generator seeded by ``(seed, t)``; checkpoints hold both networks, their EMAs, the optimiser and the step.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.priors.base import from_normalized, to_normalized
from gendistill.priors.diffusion import DiffusionPrior
from gendistill.priors.token_encoder import TokenEncoder, TokenEncoderConfig
from gendistill.priors.trainer import PriorTrainer
from gendistill.runtime import autocast, derived_seed, saved_bytes
from gendistill.store.checkpoint import (
    check_same_run,
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from gendistill.validate import MAX_ITERATIONS, check_fields, limit


@dataclass
class DiffusionRecipe:
    steps: int = limit(20_000, ge=1, le=MAX_ITERATIONS, help="training steps")
    batch: int = limit(128, ge=1, help="images per step")
    lr: float = limit(5e-4, gt=0, help="learning rate")
    warmup: int = limit(250, ge=0, help="diffusion: steps of linear learning-rate warm-up")
    weight_decay: float = limit(0.0, ge=0, help="diffusion: AdamW weight decay")
    grad_clip: float = limit(1.0, gt=0, help="diffusion: gradient norm clip")
    ema_decay: float = limit(0.999, ge=0, lt=1, help="diffusion: decay of the weights' moving average")
    cond_drop: float = limit(
        0.1, ge=0, le=1, help="diffusion: probability of the null conditioning (for classifier-free guidance)"
    )
    tokens: int = limit(5, ge=1, le=1024, help="diffusion: conditioning tokens")
    width: int = limit(64, ge=1, le=8192, help="diffusion: cross-attention width (the size of one token)")
    # one UNet level each; attention on all but the first
    block_channels: tuple[int, ...] = field(
        default=(32, 64, 64),
        metadata={"help": "diffusion: the UNet's channels per level, comma-separated", "flag": "channels"},
    )
    layers_per_block: int = limit(1, ge=1, help="diffusion: ResNet layers per UNet level")
    heads: int = limit(4, ge=1, help="diffusion: attention heads per level")
    timesteps: int = limit(1000, ge=2, help="diffusion: noise levels of the schedule")
    beta_schedule: str = limit("squaredcos_cap_v2", help="diffusion: diffusers' beta schedule")
    encoder_channels: int = limit(32, ge=1, help="diffusion: channels of the image encoder")
    checkpoint_every: int = limit(500, ge=1, help="steps between checkpoints")
    sample_every: int = limit(1000, ge=1, help="steps between sample grids")

    def __post_init__(self) -> None:
        check_fields(self)
        levels = self.block_channels
        if len(levels) < 2 or any(not isinstance(c, int) or c < 8 or c % 8 for c in levels):
            raise UserError(
                f"--channels needs two or more levels, each a multiple of 8 (GroupNorm's groups), got "
                f"{','.join(map(str, levels))}"
            )


def unet_config(recipe: DiffusionRecipe, image_size: int, channels: int) -> dict:
    """A small UNet2DConditionModel: plain ResNet blocks at full resolution, cross-attention below it."""
    levels = len(recipe.block_channels)
    if image_size % 2 ** (levels - 1):
        raise UserError(
            f"{image_size} px images cannot be halved {levels - 1} times; use "
            f"{levels - 1} or fewer extra --channels levels"
        )
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1)
    return {
        "sample_size": image_size,
        "in_channels": channels,
        "out_channels": channels,
        "block_out_channels": list(recipe.block_channels),
        "layers_per_block": recipe.layers_per_block,
        "down_block_types": list(down),
        "up_block_types": [b.replace("Down", "Up") for b in reversed(down)],
        # diffusers reads UNet2DConditionModel's attention_head_dim as the number of heads (a naming quirk it keeps
        # for Stable Diffusion's configs), so the head count goes there
        "cross_attention_dim": recipe.width,
        "attention_head_dim": recipe.heads,
        "norm_num_groups": min(8, min(recipe.block_channels)),
    }


def scheduler_config(recipe: DiffusionRecipe) -> dict:
    return {
        "num_train_timesteps": recipe.timesteps,
        "beta_schedule": recipe.beta_schedule,
        "prediction_type": "epsilon",
        "clip_sample": False,
    }


class DiffusionTrainer(PriorTrainer):
    """Holds the UNet, the token encoder, their EMAs and the optimiser; ``run`` trains to ``recipe.steps``."""

    desc = "diffusion prior"

    def __init__(
        self,
        dataset: ImageDataset,
        recipe: DiffusionRecipe,
        seed: int,
        device: torch.device,
        amp: torch.dtype | None = None,
    ) -> None:
        from diffusers import UNet2DConditionModel

        self.dataset, self.recipe, self.seed, self.device, self.amp = dataset, recipe, seed, device, amp
        torch.manual_seed(seed)
        self.unet = UNet2DConditionModel(**unet_config(recipe, dataset.image_size, dataset.channels)).to(device)
        enc = TokenEncoderConfig(dataset.channels, recipe.tokens, recipe.width, recipe.encoder_channels)
        self.encoder = TokenEncoder(enc).to(device)
        self.ema_unet = copy.deepcopy(self.unet).requires_grad_(False)
        self.ema_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        params = [*self.unet.parameters(), *self.encoder.parameters()]
        self.opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        self.prior = DiffusionPrior(self.unet, scheduler_config(recipe), encoder=self.encoder, source="training")
        self.prior.requires_grad_(True).train()
        self.step, self.seconds = 0, 0.0
        # the training images in the model's range; the labels are never read
        self.real = from_normalized(dataset.train_images, dataset.mean, dataset.std).clamp(-1, 1)

    @property
    def precision(self) -> str:
        return "fp32" if self.amp is None else "bf16"

    def parameters(self) -> list[torch.Tensor]:
        return [p for _, module in self._modules()[:2] for p in module.parameters()]  # the EMAs follow these

    def bytes_per_image(self) -> int:
        x = self.real[:2].to(self.device)
        t = torch.tensor([0, self.recipe.timesteps - 1], device=self.device)
        held, _ = saved_bytes(lambda: self.prior.denoising_loss(x, self.encoder(x).float(), t, torch.zeros_like(x)))
        return held // 2

    def run_config(self) -> dict:
        """What a resume must share with the run it continues (more steps, or other checkpoint and grid
        intervals, are fine: those never change a step's update)."""
        recipe = {
            k: v for k, v in asdict(self.recipe).items() if k not in ("steps", "checkpoint_every", "sample_every")
        }
        return {"recipe": recipe, "dataset": self.dataset.name, "seed": self.seed, "precision": self.precision}

    def train_step(self) -> dict[str, float]:
        r = self.recipe
        g = torch.Generator().manual_seed(derived_seed(self.seed, self.step))
        x = self.real[torch.randint(len(self.real), (r.batch,), generator=g)].to(self.device)
        drop = (torch.rand(r.batch, generator=g) < r.cond_drop).to(self.device)
        t = torch.randint(r.timesteps, (r.batch,), generator=g).to(self.device)
        noise = torch.randn(x.shape, generator=g).to(self.device)
        for group in self.opt.param_groups:
            group["lr"] = r.lr * min(1.0, (self.step + 1) / max(1, r.warmup))
        with autocast(self.device, self.amp):
            tokens = torch.where(drop[:, None, None], 0.0, self.encoder(x).float())
            loss = self.prior.denoising_loss(x, tokens, t, noise).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([p for g_ in self.opt.param_groups for p in g_["params"]], r.grad_clip)
        self.opt.step()
        self._update_ema()
        self.step += 1
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.recipe.ema_decay, (1 + self.step) / (10 + self.step))
        for ema, live in ((self.ema_unet, self.unet), (self.ema_encoder, self.encoder)):
            for p_ema, p in zip(ema.parameters(), live.parameters()):
                p_ema.lerp_(p, 1 - decay)

    def exported(self) -> DiffusionPrior:
        """The EMA networks as a frozen prior (what ``prior train`` saves)."""
        return DiffusionPrior(self.ema_unet, scheduler_config(self.recipe), encoder=self.ema_encoder, source="training")

    # --- persistence ---
    def _modules(self) -> tuple[tuple[str, nn.Module], ...]:
        return (
            ("unet", self.unet),
            ("encoder", self.encoder),
            ("ema_unet", self.ema_unet),
            ("ema_encoder", self.ema_encoder),
        )

    def save_checkpoint(self, folder: Path, history: list[dict]) -> None:
        tensors = {f"{name}.{k}": v for name, m in self._modules() for k, v in m.state_dict().items()}
        opt_tensors, opt_info = optimizer_tensors(self.opt, "opt")
        info = {
            "step": self.step,
            "seconds": self.seconds,
            "history": history,
            "opt": opt_info,
            "run_config": self.run_config(),
        }
        save_checkpoint(folder, {**tensors, **opt_tensors}, info)

    def load_checkpoint(self, folder: Path) -> list[dict]:
        tensors, info = load_checkpoint(folder)
        check_same_run(info, self.run_config(), folder)
        for name, module in self._modules():
            module.load_state_dict({k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")})
        restore_optimizer(self.opt, tensors, info["opt"], "opt")
        self.step, self.seconds = info["step"], info["seconds"]
        return info["history"]

    @torch.no_grad()
    def sample_grid(self, path: Path, n: int = 10, steps: int = 20) -> None:
        """Row 1: held-out images (the last training images, never drawn for a grid's noise); row 2: their
        samples under their encoder tokens; rows 3-4: unconditional samples (null tokens)."""
        from gendistill.report import class_grid, save_png, to_uint8

        prior = self.exported()
        real = self.real[-n:].to(self.device)
        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn((3 * n, *real.shape[1:]), generator=g).to(self.device)
        cond = torch.cat([prior.encoder(real), prior.null_conditioning(2 * n)])
        fake = prior.sample(noise, cond, steps=steps, scheduler="ddim").clamp(-1, 1)
        images = to_normalized(torch.cat([real, fake]).cpu(), self.dataset.mean, self.dataset.std)
        rows = torch.arange(4).repeat_interleave(n)
        save_png(class_grid(to_uint8(images, self.dataset.mean, self.dataset.std), rows.numpy(), 4), path)
