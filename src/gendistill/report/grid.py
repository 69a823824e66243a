"""Image grids with one row per class, written with Pillow (no torchvision)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Normalised NCHW float -> NHWC uint8."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x = (images.detach().float().cpu() * s + m).clamp(0, 1)
    return (x * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def class_grid(
    pixels: np.ndarray, labels: np.ndarray, num_classes: int, max_per_row: int = 20, pad: int = 2, scale: int = 2
) -> Image.Image:
    """One row per class, up to ``max_per_row`` images each, on a white background."""
    n, h, w, c = pixels.shape
    rows = [np.flatnonzero(labels == k)[:max_per_row] for k in range(num_classes)]
    cols = max(1, max((len(r) for r in rows), default=1))
    canvas = np.full((num_classes * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for k, idx in enumerate(rows):
        for j, i in enumerate(idx):
            y, x = pad + k * (h + pad), pad + j * (w + pad)
            canvas[y : y + h, x : x + w] = pixels[i]
    image = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST) if scale > 1 else image


def with_row_labels(grid: Image.Image, labels: list[str], width: int = 90) -> Image.Image:
    """``grid`` (one row per class, as :func:`class_grid` draws it) with each row's name on its left."""
    from PIL import ImageDraw

    out = Image.new("RGB", (grid.width + width, grid.height), "white")
    out.paste(grid.convert("RGB"), (width, 0))
    draw = ImageDraw.Draw(out)
    row = grid.height / max(1, len(labels))
    for k, label in enumerate(labels):
        draw.text((4, k * row + row / 2 - 5), label[:14], fill=(40, 40, 40))
    return out


def save_png(image: Image.Image, path: str | os.PathLike) -> None:
    """Write through a temporary name so a reader never sees half a PNG."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
