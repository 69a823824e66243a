"""AlexNet sized for 32 px images, as in the DC benchmark suite."""

from __future__ import annotations

from torch import nn

from gendistill.models.base import Classifier, padded_size


class AlexNet(Classifier):
    def __init__(self, channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        pad = 4 if channels == 1 and image_size == 28 else 2
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(channels, 128, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2)),
                nn.Sequential(nn.Conv2d(128, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
                nn.Sequential(nn.Conv2d(192, 256, 3, padding=1), nn.ReLU()),
                nn.Sequential(nn.Conv2d(256, 192, 3, padding=1), nn.ReLU()),
                nn.Sequential(nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            ]
        )
        size = padded_size(channels, image_size) // 8
        self.embed_dim = 192 * size * size
        self.head = nn.Linear(self.embed_dim, num_classes)
