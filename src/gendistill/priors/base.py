"""The interface of a hierarchical generative prior, as latent distillation (GLaD, H-GLaD) sees it.

A prior maps ``(z, class)`` to per-layer styles ``ws`` (w+, shape ``[N, num_ws, w_dim]``) and renders an
image through an ordered list of synthesis layers. Splitting at layer ``k``:

    f_k   = prefix(ws, k)        # the input tensor, then layers 0 .. k-1
    image = suffix(f_k, ws, k)   # layers k .. L-1

so ``suffix(prefix(ws, k), ws, k)`` is the full synthesis for every ``k`` in ``0 .. L``; ``f_0`` is the
synthesis input and ``f_L`` the image. Images come out in the prior's pixel range [-1, 1] at the dataset's
resolution; :func:`to_normalized` maps them to the dataset's normalisation.

Any ``nn.Module`` with these members works (the built-in StyleGAN, the adapters for NVlabs pickles, a
user's own network): :func:`check_prior` says what is missing.
"""

from __future__ import annotations

import torch
from torch import nn

from gendistill.errors import UserError

REQUIRED = (
    "num_classes",
    "w_dim",
    "z_dim",
    "num_ws",
    "num_layers",
    "image_channels",
    "image_size",
    "mapping",
    "synthesis_input",
    "layer",
)


class HierarchicalPrior(nn.Module):
    """Base class with the split helpers; subclasses implement ``mapping``, ``synthesis_input``, ``layer``."""

    num_classes: int
    w_dim: int
    z_dim: int
    num_ws: int
    num_layers: int
    image_channels: int
    image_size: int

    def mapping(self, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """``z [N, z_dim]``, integer ``labels [N]`` -> ``ws [N, num_ws, w_dim]``."""
        raise NotImplementedError

    def synthesis_input(self, ws: torch.Tensor) -> torch.Tensor:
        """``f_0``: what enters synthesis layer 0."""
        raise NotImplementedError

    def layer(self, i: int, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """Synthesis layer ``i`` applied to ``x``, styled by its slice of ``ws``; the last one yields the image."""
        raise NotImplementedError

    def prefix(self, ws: torch.Tensor, k: int) -> torch.Tensor:
        return prefix(self, ws, k)

    def suffix(self, f: torch.Tensor, ws: torch.Tensor, k: int) -> torch.Tensor:
        return suffix(self, f, ws, k)

    def sample(
        self, labels: torch.Tensor, generator: torch.Generator | None = None, truncation: float = 1.0
    ) -> torch.Tensor:
        """Images for integer ``labels``, on the scale where [-1, 1] is the data range (see :func:`sample`)."""
        return sample(self, labels, generator, truncation)


def prefix(prior: nn.Module, ws: torch.Tensor, k: int) -> torch.Tensor:
    x = prior.synthesis_input(ws)
    for i in range(k):
        x = prior.layer(i, x, ws)
    return x


def suffix(prior: nn.Module, f: torch.Tensor, ws: torch.Tensor, k: int) -> torch.Tensor:
    for i in range(k, prior.num_layers):
        f = prior.layer(i, f, ws)
    return f


def draw_codes(prior: nn.Module, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` latent codes z (on the CPU generator, so a seed gives the same codes on every device)."""
    return torch.randn(n, prior.z_dim, generator=generator)


def decode(prior: nn.Module, codes: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
    """The images of codes z of classes ``labels``: mapping, then the whole synthesis."""
    device = next(prior.parameters()).device
    ws = prior.mapping(codes.to(device), labels.to(device), truncation)
    return suffix(prior, prior.synthesis_input(ws), ws, 0)


def sample(
    prior: nn.Module, labels: torch.Tensor, generator: torch.Generator | None = None, truncation: float = 1.0
) -> torch.Tensor:
    """Images of fresh codes for integer ``labels``.

    The scale is the prior's training range, where the data lies in [-1, 1]; like StyleGAN's, the output
    is not clipped, so a sample may overshoot it a little (the shipped prior: about -1.4 .. 1.25). The
    distillation renders unclipped too; clamp to [-1, 1] only to display or store pixels.
    """
    return decode(prior, draw_codes(prior, len(labels), generator), labels, truncation)


def check_prior(prior: object) -> None:
    """Refuse, in one line, a module that lacks part of the interface."""
    missing = [name for name in REQUIRED if not hasattr(prior, name)]
    if missing:
        raise UserError(
            f"{type(prior).__name__} is not a hierarchical prior: it lacks {', '.join(missing)} "
            "(see gendistill.priors.HierarchicalPrior)"
        )


def to_normalized(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """[-1, 1] prior pixels -> the dataset's normalisation (what classifiers and objectives see)."""
    m = images.new_tensor(mean).view(1, -1, 1, 1)
    s = images.new_tensor(std).view(1, -1, 1, 1)
    return ((images + 1) / 2 - m) / s


def from_normalized(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """The dataset's normalisation -> [-1, 1], the range a prior is trained in."""
    m = images.new_tensor(mean).view(1, -1, 1, 1)
    s = images.new_tensor(std).view(1, -1, 1, 1)
    return (images * s + m) * 2 - 1
