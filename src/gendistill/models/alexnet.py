"""AlexNet sized for 32 px images, as in the DC benchmark suite (no normalisation by default)."""

from __future__ import annotations

from torch import nn

from gendistill.models.base import Classifier, padded_size
from gendistill.models.norm import make_norm

WIDTHS = (128, 192, 256, 192, 192)


class AlexNet(Classifier):
    """Five convolutions (5x5, 5x5, then three 3x3), max pooling after the 1st, 2nd and 5th.

    ``norm="none"`` is the field's AlexNet; ``"batch"`` is DC's AlexNetBN.
    """

    def __init__(self, channels: int, num_classes: int, image_size: int, norm: str = "none") -> None:
        super().__init__()
        first = 4 if channels == 1 and image_size == 28 else 2
        kernels, pads, pools = (5, 5, 3, 3, 3), (first, 2, 1, 1, 1), (True, True, False, False, True)
        blocks, in_ch, size = [], channels, padded_size(channels, image_size)
        for width, kernel, pad, pool in zip(WIDTHS, kernels, pads, pools, strict=True):
            layers = [nn.Conv2d(in_ch, width, kernel, padding=pad), make_norm(norm, width, (size, size)), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            blocks.append(nn.Sequential(*layers))
            in_ch = width
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = in_ch * size * size
        self.head = nn.Linear(self.embed_dim, num_classes)
