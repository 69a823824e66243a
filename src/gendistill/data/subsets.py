"""Picking real images by class: the checks and draws that parameterisations and baselines share."""

from __future__ import annotations

import torch

from gendistill.data.container import ImageDataset
from gendistill.errors import UserError


def check_ipc(dataset: ImageDataset, ipc: int) -> None:
    if ipc < 1:
        raise UserError(f"ipc must be a positive number of images per class, got {ipc}")
    smallest = min(dataset.class_counts("train"))
    if ipc > smallest:
        raise UserError(f"ipc {ipc} is more than the smallest class holds ({smallest} training images); lower --ipc")


def random_subset(dataset: ImageDataset, ipc: int, generator: torch.Generator, **_) -> torch.Tensor:
    """ipc random training indices per class."""
    picks = []
    for idx in dataset.class_indices("train"):
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:ipc]])
    return torch.cat(picks)
