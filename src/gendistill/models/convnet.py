"""ConvNet-D: D blocks of [3x3 conv, norm, activation, 2x2 pool] and a linear head (DC/DSA/DM/MTT)."""

from __future__ import annotations

from torch import nn

from gendistill.models.base import Classifier, first_padding, padded_size
from gendistill.models.norm import make_activation, make_norm, make_pool


def default_depth(image_size: int) -> int:
    """3 blocks up to 32 px, one more per doubling (4 at 64 px, 5 at 128 px)."""
    depth, size = 3, 32
    while size < image_size:
        depth, size = depth + 1, size * 2
    return depth


class ConvNet(Classifier):
    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        depth: int | None = None,
        width: int = 128,
        norm: str = "instance",
        act: str = "relu",
        pool: str = "avg",
    ) -> None:
        super().__init__()
        depth = depth or default_depth(image_size)
        size = padded_size(channels, image_size)
        blocks, in_ch = [], channels
        for i in range(depth):
            pad = first_padding(channels, image_size, 3) if i == 0 else 1
            layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 3, padding=pad)]
            layers.append(make_norm(norm, width, (size, size)))
            layers.append(make_activation(act))
            if pool != "none":
                layers.append(make_pool(pool))
                size //= 2
            blocks.append(nn.Sequential(*layers))
            in_ch = width
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = width * size * size
        self.head = nn.Linear(self.embed_dim, num_classes)
