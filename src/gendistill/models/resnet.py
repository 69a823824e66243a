"""ResNet-18 with the small-image stem (3x3 conv, stride 1, no max pool)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.models.base import Classifier
from gendistill.models.norm import make_norm


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), make_norm(norm, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(Classifier):
    def __init__(
        self, channels: int, num_classes: int, image_size: int, layers=(2, 2, 2, 2), norm: str = "batch"
    ) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(channels, 64, 3, 1, 1, bias=False), make_norm(norm, 64), nn.ReLU())
        blocks, in_ch = [], 64
        for i, n in enumerate(layers):
            out_ch = 64 * 2**i
            stage = [BasicBlock(in_ch, out_ch, 1 if i == 0 else 2, norm)]
            stage += [BasicBlock(out_ch, out_ch, 1, norm) for _ in range(n - 1)]
            blocks.append(nn.Sequential(*stage))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = in_ch
        self.head = nn.Linear(in_ch, num_classes)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(h, 1).flatten(1)
