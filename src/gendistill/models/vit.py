"""A small Vision Transformer for 28-64 px images (patch 4, pre-norm encoder, class token)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.models.base import Classifier, padded_size


class ViT(Classifier):
    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        patch: int = 4,
        dim: int = 192,
        depth: int = 6,
        heads: int = 3,
        mlp_ratio: int = 2,
    ) -> None:
        super().__init__()
        self.size = padded_size(channels, image_size)
        self.pad = (self.size - image_size) // 2
        if self.size % patch:
            raise ValueError(f"image size {self.size} is not a multiple of the patch size {patch}")
        self.grid = self.size // patch
        self.patchify = nn.Conv2d(channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.grid**2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, heads, dim * mlp_ratio, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.embed_dim = dim

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        tokens = self.patchify(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.pos

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h[:, 0])

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Patch tokens of each layer as [N, dim, grid, grid] maps, like a conv net's blocks."""
        maps = super().features(x)
        return [m[:, 1:].transpose(1, 2).reshape(len(x), -1, self.grid, self.grid) for m in maps]
