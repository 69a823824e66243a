"""Differentiable siamese augmentation (Zhao & Bilen 2021).

One call applies one operation drawn from the strategy (``color`` applies brightness, saturation and
contrast together). In siamese mode one parameter draw is shared by every image of both batches, so real
and synthetic images are compared under the same transform; at evaluation every image gets its own draw.

Written here rather than on kornia: kornia draws its own parameters per call, but siamese matching needs
one draw applied to two batches of different sizes, and the field's exact parameterisation (scale and
rotation as one affine grid, integer-pixel translation with zero fill, square cutout) is what the
published numbers were produced with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gendistill.errors import UserError

OPERATIONS = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
DIGITS_STRATEGY = "color_crop_cutout_scale_rotate"  # flipping changes a digit's meaning


@dataclass(frozen=True)
class DSAParams:
    """The field's published parameters."""

    flip_p: float = 0.5
    scale_ratio: float = 1.2
    rotate_degrees: float = 15.0
    crop_pad: float = 0.125
    cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


def parse_strategy(strategy: str) -> tuple[str, ...]:
    if strategy in ("", "none"):
        return ()
    ops = tuple(strategy.split("_"))
    bad = [op for op in ops if op not in OPERATIONS]
    if bad:
        raise UserError(f"unknown augmentation {bad[0]!r} in {strategy!r}; use {'_'.join(OPERATIONS)} or none")
    return ops


def strategy_for(dataset_name: str) -> str:
    return DIGITS_STRATEGY if dataset_name in ("mnist", "svhn") else DEFAULT_STRATEGY


class DSA:
    """``aug(x, gen)`` per-image draws; ``aug.siamese(a, b, gen)`` one draw for both batches."""

    def __init__(self, strategy: str = DEFAULT_STRATEGY, params: DSAParams | None = None) -> None:
        self.ops = parse_strategy(strategy)
        self.strategy = strategy
        self.p = params or DSAParams()

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.ops:
            return x
        op = self._pick(generator)
        return self._apply(op, x, self._draw(op, len(x), x.shape[-1], generator))

    def siamese(self, *batches: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """The same operation and the same parameters for every image of every batch."""
        if not self.ops:
            return batches
        op = self._pick(generator)
        draw = self._draw(op, 1, batches[0].shape[-1], generator)
        return tuple(self._apply(op, b, {k: v.expand(len(b), *v.shape[1:]) for k, v in draw.items()}) for b in batches)

    def _pick(self, generator: torch.Generator | None) -> str:
        return self.ops[int(torch.randint(len(self.ops), (1,), generator=generator))]

    def _draw(self, op: str, n: int, size: int, g: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Random parameters on the CPU generator (so a seed means the same draw on every device)."""
        rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
        p = self.p
        if op == "color":
            return {"brightness": rand(n), "saturation": rand(n), "contrast": rand(n)}
        if op == "crop":
            shift = int(size * p.crop_pad + 0.5)
            return {"shift": torch.randint(-shift, shift + 1, (n, 2), generator=g)}
        if op == "cutout":
            return {"center": torch.randint(0, size, (n, 2), generator=g)}
        if op == "flip":
            return {"flip": rand(n) < p.flip_p}
        if op == "scale":
            return {"scale": rand(n, 2) * (p.scale_ratio - 1.0 / p.scale_ratio) + 1.0 / p.scale_ratio}
        if op == "rotate":
            return {"angle": (rand(n) - 0.5) * 2 * p.rotate_degrees * math.pi / 180}
        raise AssertionError(op)

    def _apply(self, op: str, x: torch.Tensor, d: dict[str, torch.Tensor]) -> torch.Tensor:
        d = {k: v.to(x.device) for k, v in d.items()}
        return getattr(self, f"_{op}")(x, **d)

    def _color(self, x, brightness, saturation, contrast):
        p, view = self.p, (-1, 1, 1, 1)
        x = x + (brightness.view(view) - 0.5) * p.brightness
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (saturation.view(view) * p.saturation) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (contrast.view(view) + p.contrast) + mean

    def _crop(self, x, shift):
        """Translate by whole pixels, filling with zeros: one gather, differentiable w.r.t. x."""
        n, _, h, w = x.shape
        rows = (torch.arange(h, device=x.device).view(1, h) - shift[:, :1]).clamp_(-1, h)  # [n, h]
        cols = (torch.arange(w, device=x.device).view(1, w) - shift[:, 1:]).clamp_(-1, w)  # [n, w]
        padded = F.pad(x, (1, 1, 1, 1))
        idx = (rows + 1).view(n, 1, h, 1) * (w + 2) + (cols + 1).view(n, 1, 1, w)
        flat = padded.flatten(2)
        return flat.gather(2, idx.expand(n, x.shape[1], h, w).flatten(2)).view_as(x)

    def _cutout(self, x, center):
        """Zero a square of side ``cutout * size`` around a random centre (clipped at the border)."""
        n, _, h, w = x.shape
        side = int(h * self.p.cutout + 0.5)
        top = center[:, 0].view(n, 1, 1) - side // 2
        left = center[:, 1].view(n, 1, 1) - side // 2
        ys = torch.arange(h, device=x.device).view(1, h, 1)
        xs = torch.arange(w, device=x.device).view(1, 1, w)
        inside = (ys >= top) & (ys < top + side) & (xs >= left) & (xs < left + side)
        return x * (~inside).unsqueeze(1).to(x.dtype)

    def _flip(self, x, flip):
        return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)

    def _affine(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, align_corners=True)

    def _scale(self, x, scale):
        theta = torch.zeros(len(x), 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 1, 1] = scale[:, 0], scale[:, 1]
        return self._affine(x, theta)

    def _rotate(self, x, angle):
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([cos, sin, torch.zeros_like(cos)], 1), torch.stack([-sin, cos, torch.zeros_like(cos)], 1)], 1
        )
        return self._affine(x, theta)
