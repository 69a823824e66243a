"""Diffusion priors on diffusers: a frozen conditional UNet (and, for latent diffusion, its VAE) driven by
token conditionings instead of text.

Any local diffusers folder with ``unet/`` (a ``UNet2DConditionModel``: cross-attention is what a
conditioning enters through) and ``scheduler/`` works, with or without ``vae/`` (an ``AutoencoderKL``): a
Stable Diffusion 1.x folder unchanged, or the prior ``gendistill prior train --kind diffusion`` writes
(which adds ``encoder/``, its image-to-tokens pathway, :mod:`gendistill.priors.token_encoder`). Text
encoders and tokenizers in the folder are never loaded: Diffusion Inversion bypasses them.

The model works on images in [-1, 1] at its working resolution (``image_size``: the UNet's sample size
times the VAE's downscaling); :meth:`DiffusionPrior.to_model` and :meth:`DiffusionPrior.to_pixels` convert
from and to the dataset's size and channels (grey images are repeated over an RGB model's channels and
averaged back). Sampling is deterministic given the initial noise (DDIM with eta 0, or DPM-Solver++), so an
image depends only on its own seed and conditioning, never on the batch it was drawn in.

Weights load from safetensors only. diffusers falls back to pickle-based ``.bin`` files when a folder has
no safetensors; such a folder is refused unless the caller passes ``trust_pickle`` (and diffusers then
reads it with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.errors import UserError
from gendistill.io import atomic_dir, write_json
from gendistill.priors.token_encoder import TokenEncoder
from gendistill.registry import Registry

INDEX = "model_index.json"
CLASS_NAME = "GendistillDiffusionPrior"  # model_index.json's _class_name for the priors gendistill writes
DEFAULT_TOKENS = 5  # Diffusion Inversion's conditioning length on Stable Diffusion

# the samplers, built from the prior's own noise schedule; both deterministic given the initial noise
SCHEDULERS: Registry[Callable[[dict], object]] = Registry("scheduler")


def _ddim(config: dict) -> object:
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(config)


def _dpm(config: dict) -> object:
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")


SCHEDULERS.register("ddim")(_ddim)
SCHEDULERS.register("dpm")(_dpm)


class DiffusionPrior(nn.Module):
    """A frozen conditional denoiser and what converts between the dataset's pixels and its inputs."""

    def __init__(
        self,
        unet: nn.Module,
        scheduler_config: dict,
        vae: nn.Module | None = None,
        encoder: TokenEncoder | None = None,
        tokens: int | None = None,
        source: str = "",
    ) -> None:
        from diffusers import DDPMScheduler

        super().__init__()
        self.unet, self.vae, self.encoder = unet, vae, encoder
        self.scheduler_config = {k: v for k, v in dict(scheduler_config).items() if not k.startswith("_")}
        self.noise_schedule = DDPMScheduler.from_config(self.scheduler_config)
        self.prediction_type = self.noise_schedule.config.prediction_type
        self.num_train_timesteps = int(self.noise_schedule.config.num_train_timesteps)
        self.width = int(unet.config.cross_attention_dim)
        self.tokens = int(tokens or (encoder.config.tokens if encoder is not None else DEFAULT_TOKENS))
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
        sample_size = unet.config.sample_size
        self.image_size = int(sample_size if isinstance(sample_size, int) else sample_size[0]) * self.vae_scale
        self.image_channels = int(vae.config.in_channels if vae is not None else unet.config.in_channels)
        self.latent_channels = int(unet.config.in_channels)
        self.source = source
        if encoder is not None and encoder.config.width != self.width:
            raise UserError(
                f"{source}: its encoder makes tokens {encoder.config.width} wide but the UNet's "
                f"cross-attention is {self.width} wide; re-export the prior"
            )
        self.eval().requires_grad_(False)

    # --- pixels <-> model space ---
    def to_model(self, images: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Images in [-1, 1] (any size; 1 or the model's channels) -> what the UNet denoises."""
        x = _resize(_channels(images, self.image_channels), size or self.image_size)
        if self.vae is None:
            return x
        latents = self.vae.encode(x.to(self._dtype(self.vae))).latent_dist.mean.float()
        return (latents - self._shift()) * self.vae.config.scaling_factor

    def to_pixels(self, z: torch.Tensor, size: int, channels: int) -> torch.Tensor:
        """What the UNet denoises -> images in [-1, 1] at ``size`` px with ``channels`` channels."""
        if self.vae is not None:
            z = z / self.vae.config.scaling_factor + self._shift()
            z = self.vae.decode(z.to(self._dtype(self.vae))).sample.float()
        return _channels(_resize(z, size), channels)

    def latent_shape(self, n: int, size: int | None = None) -> tuple[int, int, int, int]:
        side = (size or self.image_size) // self.vae_scale
        return n, self.latent_channels, side, side

    # --- the denoiser ---
    def predict(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        uncond: torch.Tensor | None = None,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """The UNet's output at ``z_t``; with ``uncond``, classifier-free guided: u + g (c - u)."""
        dtype = self._dtype(self.unet)
        if uncond is None or guidance == 1.0:
            return self.unet(z_t.to(dtype), t, encoder_hidden_states=cond.to(dtype)).sample.float()
        both = self.unet(
            torch.cat([z_t, z_t]).to(dtype),
            torch.cat([t, t]) if t.ndim else t,
            encoder_hidden_states=torch.cat([uncond, cond]).to(dtype),
        ).sample.float()
        u, c = both.chunk(2)
        return u + guidance * (c - u)

    def denoising_loss(
        self, z0: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Per-sample mean squared error of the UNet's prediction at timesteps ``t`` (the training loss)."""
        z_t = self.noise_schedule.add_noise(z0, noise, t)
        pred = self.predict(z_t, t, cond)
        return (pred - self.target(z0, noise, t)).square().flatten(1).mean(1)

    def target(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "v_prediction":
            return self.noise_schedule.get_velocity(z0, noise, t)
        if self.prediction_type == "sample":
            return z0
        raise UserError(
            f"{self.source}: prediction type {self.prediction_type!r} is not supported (epsilon, v_prediction, sample)"
        )

    def sample(
        self,
        noise: torch.Tensor,
        cond: torch.Tensor,
        uncond: torch.Tensor | None = None,
        guidance: float = 1.0,
        steps: int = 20,
        scheduler: str = "dpm",
    ) -> torch.Tensor:
        """Denoise ``noise`` (in the model space, unit variance) under ``cond``; returns the clean latents."""
        sched = SCHEDULERS.get(scheduler)(self.scheduler_config)
        sched.set_timesteps(steps, device=noise.device)
        z = noise * sched.init_noise_sigma
        if uncond is not None and uncond.shape[0] == 1:
            uncond = uncond.expand(len(cond), -1, -1)
        for t in sched.timesteps:
            pred = self.predict(sched.scale_model_input(z, t), t, cond, uncond, guidance)
            z = sched.step(pred, t, z).prev_sample
        return z

    def null_conditioning(self, n: int = 1) -> torch.Tensor:
        """The all-zero conditioning, the unconditional branch the shipped prior was trained with."""
        return torch.zeros(n, self.tokens, self.width, device=self.device)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def _dtype(self, module: nn.Module) -> torch.dtype:
        return next(module.parameters()).dtype

    def _shift(self) -> float:
        return float(getattr(self.vae.config, "shift_factor", None) or 0.0)

    # --- persistence, as a diffusers folder ---
    def save_pretrained(
        self, path: str | os.PathLike, dtype: torch.dtype = torch.float32, force: bool = False, info: dict | None = None
    ) -> Path:
        """``unet/``, ``scheduler/``, ``vae/`` and ``encoder/`` (when present) and ``model_index.json``, atomically."""
        import diffusers
        from diffusers import DDPMScheduler

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        index = {
            "_class_name": CLASS_NAME,
            "_diffusers_version": diffusers.__version__,
            "unet": ["diffusers", type(self.unet).__name__],
            "scheduler": ["diffusers", "DDPMScheduler"],
        }
        with atomic_dir(path, force) as tmp:
            _save_module(self.unet, tmp / "unet", dtype)
            DDPMScheduler.from_config(self.scheduler_config).save_pretrained(tmp / "scheduler")
            if self.vae is not None:
                _save_module(self.vae, tmp / "vae", dtype)
                index["vae"] = ["diffusers", type(self.vae).__name__]
            if self.encoder is not None:
                self.encoder.save_pretrained(tmp / "encoder", dtype)
                index["encoder"] = ["gendistill", "TokenEncoder"]
            write_json(tmp / INDEX, index)
            write_json(tmp / "gendistill.json", {"tokens": self.tokens, **(info or {})})
        return path


def _save_module(module: nn.Module, folder: Path, dtype: torch.dtype) -> None:
    original = next(module.parameters()).dtype
    module.to(dtype).save_pretrained(folder, safe_serialization=True)
    module.to(original)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    if channels == 1:
        return x.mean(1, keepdim=True)
    raise UserError(f"cannot map {x.shape[1]}-channel images to a {channels}-channel model")


# --- loading ---
def is_diffusers_folder(path: Path) -> bool:
    return (path / INDEX).is_file() or (path / "unet").is_dir()


def load_diffusers(
    path: str | os.PathLike, trust_pickle: bool = False, device: torch.device | None = None
) -> DiffusionPrior:
    """The frozen prior in a local diffusers folder; every way the folder can be wrong is one line."""
    path = Path(path)
    unet_dir = path / "unet"
    if not (unet_dir / "config.json").is_file():
        raise UserError(
            f"{path} is not a diffusers model: it has no unet/config.json (a diffusers model folder "
            "holds unet/, scheduler/ and, for latent diffusion, vae/)"
        )
    unet_class = _class_of(unet_dir)
    if unet_class != "UNet2DConditionModel":
        raise UserError(
            f"{unet_dir} holds a {unet_class}, which has no cross-attention to condition on; "
            "Diffusion Inversion needs a UNet2DConditionModel"
        )
    scheduler_file = path / "scheduler" / "scheduler_config.json"
    if not scheduler_file.is_file():
        raise UserError(
            f"{path} has no scheduler/scheduler_config.json; the noise schedule the UNet was trained "
            "with is needed (copy the scheduler/ folder of the model)"
        )
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    unet = _load_module(UNet2DConditionModel, unet_dir, trust_pickle)
    vae = None
    if (path / "vae").is_dir():
        if _class_of(path / "vae") != "AutoencoderKL":
            raise UserError(f"{path / 'vae'} holds a {_class_of(path / 'vae')}, not an AutoencoderKL")
        vae = _load_module(AutoencoderKL, path / "vae", trust_pickle)
    encoder = TokenEncoder.from_pretrained(path / "encoder") if (path / "encoder").is_dir() else None
    info = _read(path / "gendistill.json") if (path / "gendistill.json").is_file() else {}
    prior = DiffusionPrior(unet, _read(scheduler_file), vae, encoder, info.get("tokens"), str(path))
    prior.info = info
    return prior.to(device) if device is not None else prior


def _read(file: Path) -> dict:
    try:
        obj = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {file} ({e.__class__.__name__}); re-create it") from None
    if not isinstance(obj, dict):
        raise UserError(f"{file} holds no JSON object; re-create it")
    return obj


def _class_of(folder: Path) -> str:
    return str(_read(folder / "config.json").get("_class_name", "an untagged model"))


def _load_module(cls: type, folder: Path, trust_pickle: bool) -> nn.Module:
    if any(folder.glob("*.safetensors")):
        safetensors = True
    elif any(folder.glob("*.bin")):
        if not trust_pickle:
            raise UserError(
                f"{folder} holds only pickle weights (.bin), which can run code when loaded; convert "
                "them to safetensors, or pass --trust-pickle if you trust their source"
            )
        safetensors = False
    else:
        raise UserError(f"{folder} holds no weights (.safetensors); re-download or re-export the model")
    variant = "fp16" if safetensors and not (folder / "diffusion_pytorch_model.safetensors").is_file() else None
    try:
        module = cls.from_pretrained(
            folder, use_safetensors=safetensors, local_files_only=True, variant=variant, torch_dtype=torch.float32
        )
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:  # diffusers' ways of saying "wrong files"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise UserError(f"cannot load {folder}: {reason}") from None
    except Exception as e:  # torch.load(weights_only=True) refusing a crafted pickle raises UnpicklingError
        if e.__class__.__name__ != "UnpicklingError":
            raise
        raise UserError(f"{folder}: its pickle weights hold more than tensors and were refused") from None
    return module.eval().requires_grad_(False)
