"""A small class-conditional generator of the StyleGAN family, sized to train on a CPU.

Mapping: normalised z and a class embedding -> an MLP -> w (one w per synthesis layer: w+). Synthesis:
a learned 4x4 constant, then style-modulated 3x3 convolutions with weight demodulation, doubling the
resolution every other layer up to a power of two >= the dataset's size, and a modulated 1x1 to-pixels
layer that crops to the dataset's size (28 px Fashion-MNIST is generated at 32 px, centre-cropped): at
32 px that is 8 synthesis layers, the hierarchy H-GLaD walks.

Departures from StyleGAN2, each for this use: no per-pixel noise inputs (a latent then fully determines
its image, so distillation and its resume are deterministic); no skip to-RGB branches (each layer's
output is the whole state, so splitting at any layer is exact); modulation applied to activations
instead of a grouped convolution over per-sample weights (mathematically the same; on a CPU one shared
convolution is several times faster than N small grouped ones).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.errors import UserError
from gendistill.priors.base import HierarchicalPrior
from gendistill.store import open_folder, write_folder
from gendistill.validate import MAX_IMAGE_SIZE, Limit, check_fields, check_value, limit

LRELU_GAIN = math.sqrt(2.0)
CLASS_NAME = "StyleGAN"
WEIGHTS = "model"  # model.safetensors


@dataclass
class StyleGANConfig:
    num_classes: int
    image_size: int
    image_channels: int
    z_dim: int = limit(64, ge=1, le=4096, help="gan: size of the latent z")
    w_dim: int = limit(128, ge=1, le=4096, help="gan: size of the style code w")
    mapping_layers: int = limit(4, ge=1, le=64, help="gan: layers of the mapping network z -> w")
    channel_base: int = limit(
        512, ge=1, help="gan: channels at resolution r: base // r, capped at --channel-max"
    )  # min(channel_max, channel_base // r)
    channel_max: int = limit(64, ge=1, le=4096, help="gan: the channel cap")

    def __post_init__(self) -> None:
        check_fields(self)
        check_value("num_classes", self.num_classes, int, Limit(ge=1))
        check_value("image_size", self.image_size, int, Limit(ge=2, le=MAX_IMAGE_SIZE))
        check_value("image_channels", self.image_channels, int, Limit(ge=1, le=4))
        if self.channels(self.resolution) < 1:
            raise UserError(
                f"channel_base {self.channel_base} leaves no channels at {self.resolution} px (channels "
                f"there are channel_base // {self.resolution}); use a channel_base of at least "
                f"{self.resolution}"
            )

    @property
    def resolution(self) -> int:
        return max(4, 2 ** math.ceil(math.log2(self.image_size)))

    def channels(self, res: int) -> int:
        return channels_at(res, self.channel_base, self.channel_max)


def channels_at(res: int, base: int, cap: int) -> int:
    """StyleGAN's channel schedule: fewer channels at higher resolution, capped (generator and critic)."""
    return min(cap, base // res)


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate of ProGAN/StyleGAN (weights scaled at run time)."""

    def __init__(self, n_in: int, n_out: int, bias_init: float = 0.0, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), bias_init / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(n_in), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Mapping(nn.Module):
    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.embed = EqualLinear(cfg.num_classes, cfg.z_dim)
        dims = [2 * cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.net = nn.ModuleList(EqualLinear(a, b, lr_mul=0.01) for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = self.embed(F.one_hot(labels, self.embed.weight.shape[1]).float())
        x = torch.cat([_normalize(z), _normalize(c)], dim=1)
        for layer in self.net:
            x = F.leaky_relu(layer(x), 0.2) * LRELU_GAIN
        return x


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


class ModulatedConv(nn.Module):
    """One synthesis layer: style from w, (2x bilinear upsampling), modulated conv, demodulation, bias,
    leaky ReLU. The to-pixels variant is a 1x1 conv without demodulation or activation."""

    def __init__(
        self, w_dim: int, c_in: int, c_out: int, kernel: int = 3, up: bool = False, to_pixels: bool = False
    ) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.up, self.to_pixels, self.padding = up, to_pixels, kernel // 2
        self.scale = 1 / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # [N, c_in]
        weight = self.weight * self.scale
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.to_pixels:
            return x + self.bias.view(1, -1, 1, 1)
        demod = torch.rsqrt(style.square() @ weight.square().sum((2, 3)).t() + 1e-8)  # [N, c_out]
        x = x * demod[:, :, None, None] + self.bias.view(1, -1, 1, 1)
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class StyleGAN(HierarchicalPrior):
    """The built-in prior. ``layer(i)`` uses ``ws[:, i]``; the constant input uses none."""

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.config = cfg
        self.num_classes, self.z_dim, self.w_dim = cfg.num_classes, cfg.z_dim, cfg.w_dim
        self.image_channels, self.image_size = cfg.image_channels, cfg.image_size
        self.mapping_net = Mapping(cfg)
        self.const = nn.Parameter(torch.randn(cfg.channels(4), 4, 4))
        layers, res = [ModulatedConv(cfg.w_dim, cfg.channels(4), cfg.channels(4))], 4
        while res < cfg.resolution:
            res *= 2
            layers.append(ModulatedConv(cfg.w_dim, cfg.channels(res // 2), cfg.channels(res), up=True))
            layers.append(ModulatedConv(cfg.w_dim, cfg.channels(res), cfg.channels(res)))
        layers.append(ModulatedConv(cfg.w_dim, cfg.channels(res), cfg.image_channels, kernel=1, to_pixels=True))
        self.layers = nn.ModuleList(layers)
        self.num_layers = self.num_ws = len(layers)

    def mapping(self, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        w = self.mapping_net(z, labels)
        if truncation != 1.0:
            w = self.mapping_net.w_avg.lerp(w, truncation)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis_input(self, ws: torch.Tensor) -> torch.Tensor:
        return self.const.unsqueeze(0).expand(len(ws), -1, -1, -1)

    def layer(self, i: int, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        x = self.layers[i](x, ws[:, i])
        if i == self.num_layers - 1:
            x = _fit(x, self.image_size)
        return x

    # --- storage: a store folder (config.json + model.safetensors), as diffusers does ---
    def config_dict(self) -> dict:
        """What rebuilds this network with :meth:`from_config`: the architecture, plus what loading recorded."""
        return {**getattr(self, "pretrained_config", {}), **asdict(self.config)}

    def save_pretrained(
        self,
        path: str | os.PathLike,
        dtype: torch.dtype = torch.float32,
        force: bool = False,
        extra_config: dict | None = None,
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into the folder ``path`` atomically."""
        tensors = {k: v.detach().to(dtype) for k, v in self.state_dict().items()}
        config = {**self.config_dict(), **(extra_config or {})}
        config.pop("class", None)  # format 1's tag
        return write_folder(path, CLASS_NAME, config, {WEIGHTS: tensors}, force)

    @classmethod
    def from_config(cls, config: dict, state: dict[str, torch.Tensor], where: str = "the prior") -> StyleGAN:
        """A frozen network of the architecture ``config`` names, holding the weights ``state``."""
        fields = StyleGANConfig.__dataclass_fields__
        try:
            model = cls(StyleGANConfig(**{k: v for k, v in config.items() if k in fields}))
            model.load_state_dict({k: v.float() for k, v in state.items()})
        except (TypeError, RuntimeError) as e:  # a config without the architecture, or weights of another one
            raise UserError(f"cannot build {where} from its weights: {str(e).splitlines()[0]}") from None
        model.pretrained_config = {k: v for k, v in config.items() if not k.startswith("_") and k != "class"}
        return model.eval().requires_grad_(False)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> StyleGAN:
        stored = open_folder(path, "prior")
        return cls.from_config(stored.config, stored.tensors(WEIGHTS), str(stored.path))


def _fit(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop to ``size`` (even margins), else resize: the synthesis runs at a power of two."""
    extra = x.shape[-1] - size
    if extra == 0:
        return x
    if extra > 0 and extra % 2 == 0:
        m = extra // 2
        return x[..., m : m + size, m : m + size]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
