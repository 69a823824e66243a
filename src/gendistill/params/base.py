"""Where the synthetic data lives. A parameterisation owns its learnable tensors and renders labeled
images differentiably; the engine optimises its parameters, the objective only sees rendered images."""

from __future__ import annotations

import torch
from torch import nn

from gendistill.artifact import SyntheticSet


class Parameterisation(nn.Module):
    """Base class: ``labels`` is a buffer (images are ordered by class), ``render()`` gives all images.

    Subclasses register their learnable tensors as ``nn.Parameter`` and implement ``render``. The engine
    checkpoints ``state_dict()``; ``extra_tensors`` is what the artifact keeps beside the images.
    """

    labels: torch.Tensor

    def __init__(self, labels: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("labels", labels.long().clone())
        self.num_classes = num_classes

    def render(self) -> torch.Tensor:
        raise NotImplementedError

    def render_classes(self, classes: list[int]) -> torch.Tensor:
        """Images of the given classes, in class order (subclasses may render only those)."""
        mask = torch.isin(self.labels, torch.tensor(classes, device=self.labels.device))
        return self.render()[mask]

    def class_mask(self, classes: list[int]) -> torch.Tensor:
        return torch.isin(self.labels, torch.tensor(classes, device=self.labels.device))

    def extra_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    # --- hooks the engine calls; the defaults suit a parameterisation that is just tensors ---
    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups; a parameterisation with tensors of different scales gives each its own lr."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def finish_backward(self) -> None:
        """After ``loss.backward()``: complete gradients that ``render`` deferred (chunked rendering)."""

    def after_step(self) -> None:
        """After each optimiser step: projections such as clipping."""

    def can_advance(self) -> bool:
        """Whether there is a next stage (H-GLaD's next layer)."""
        return False

    def advance(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} has a single stage")

    def describe(self) -> dict:
        """What the artifact's config records about this parameterisation."""
        return {}

    def storage_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.parameters())

    @torch.no_grad()
    def to_synthetic_set(self, meta: dict, lr: torch.Tensor | None = None) -> SyntheticSet:
        images = self.render().detach().float().cpu()
        return SyntheticSet(images, self.labels.cpu(), meta, lr=lr, extra=self.extra_tensors())
