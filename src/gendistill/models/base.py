"""What every classifier exposes: ``embed`` (penultimate features) and ``features`` (per-block maps)."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """``forward(x) = head(embed(x))``; ``features(x)`` lists the output of every block.

    Subclasses set ``self.blocks`` (an ``nn.ModuleList`` applied in order), ``self.head`` and, where the
    block output needs reshaping before the head, override :meth:`pool`.
    """

    blocks: nn.ModuleList
    head: nn.Module

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return h.flatten(1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(x)
        maps = []
        for block in self.blocks:
            h = block(h)
            maps.append(h)
        return maps

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.pool(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def first_padding(channels: int, image_size: int, kernel: int) -> int:
    """The field pads 28 px one-channel images to 32 px in the first conv (padding 3 for a 3x3 kernel)."""
    same = kernel // 2
    return same + 2 if channels == 1 and image_size == 28 else same


def padded_size(channels: int, image_size: int) -> int:
    return 32 if channels == 1 and image_size == 28 else image_size
