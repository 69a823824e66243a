"""VGG-11 for small images: one conv block per stage, instance norm by default (DC's VGG11)."""

from __future__ import annotations

from torch import nn

from gendistill.models.base import Classifier, first_padding, padded_size
from gendistill.models.norm import make_norm

VGG11 = ((64,), (128,), (256, 256), (512, 512), (512, 512))


class VGG(Classifier):
    def __init__(self, channels: int, num_classes: int, image_size: int, stages=VGG11, norm: str = "instance") -> None:
        super().__init__()
        size = padded_size(channels, image_size)
        blocks, in_ch, first = [], channels, True
        for stage in stages:
            layers: list[nn.Module] = []
            for width in stage:
                pad = first_padding(channels, image_size, 3) if first else 1
                first = False
                layers += [nn.Conv2d(in_ch, width, 3, padding=pad), make_norm(norm, width, (size, size)), nn.ReLU()]
                in_ch = width
            layers.append(nn.MaxPool2d(2))
            size //= 2
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = in_ch * size * size
        self.head = nn.Linear(self.embed_dim, num_classes)
