"""Adapters for NVlabs-family network pickles: StyleGAN2(-ADA), StyleGAN3 and StyleGAN-XL.

Their pickles store classes of NVlabs' own code (``dnnlib``, ``torch_utils``, ``training``), so loading
one needs that code importable and runs code from the file: only for a file the user trusts, which is
why :func:`load_network_pickle` wants ``trust_pickle=True`` spelled out. Nothing is re-implemented here:
the adapters call the loaded modules and only expose them through :class:`HierarchicalPrior`.

- StyleGAN3 and StyleGAN-XL synthesis networks are ``input`` followed by the layers in ``layer_names``,
  layer ``i`` styled by ``ws[:, i + 1]``: the adapter's layers are exactly those.
- StyleGAN2 synthesis networks are blocks (``b4``, ``b8``, ...), each taking ``(x, img)``; the adapter's
  layers are the blocks after the first, and its feature maps are ``x`` and ``img`` stacked on channels
  (the image branch of the skip architecture is part of the state a split must carry).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.errors import UserError
from gendistill.priors.base import HierarchicalPrior


class _Adapter(HierarchicalPrior):
    def __init__(self, G: nn.Module, image_size: int | None = None) -> None:
        super().__init__()
        self.G = G.eval().requires_grad_(False)
        self.num_classes = int(G.c_dim)
        if self.num_classes < 1:
            raise UserError(
                "this generator is unconditional (c_dim = 0); latent distillation needs a class-conditional one"
            )
        self.z_dim, self.w_dim, self.num_ws = int(G.z_dim), int(G.w_dim), int(G.num_ws)
        self.image_channels = int(G.img_channels)
        self.native_size = int(G.img_resolution)
        self.image_size = image_size or self.native_size

    def mapping(self, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        c = F.one_hot(labels, self.num_classes).to(z.dtype)
        return self.G.mapping(z, c, truncation_psi=truncation)

    def _out(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[-1] == self.image_size:
            return img
        return F.interpolate(img, size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)


class StyleGAN3Adapter(_Adapter):
    """StyleGAN3 and StyleGAN-XL (``synthesis.input`` + ``synthesis.layer_names``)."""

    def __init__(self, G: nn.Module, image_size: int | None = None) -> None:
        super().__init__(G, image_size)
        self.names = list(G.synthesis.layer_names)
        self.num_layers = len(self.names)

    def synthesis_input(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis.input(ws[:, 0])

    def layer(self, i: int, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        syn = self.G.synthesis
        x = getattr(syn, self.names[i])(x, ws[:, i + 1], update_emas=False)
        if i == self.num_layers - 1:
            x = self._out(x * float(getattr(syn, "output_scale", 1.0)))
        return x


class StyleGAN2Adapter(_Adapter):
    """StyleGAN2 / StyleGAN2-ADA (``synthesis.block_resolutions``, blocks ``b<res>`` on ``(x, img)``)."""

    def __init__(self, G: nn.Module, image_size: int | None = None) -> None:
        super().__init__(G, image_size)
        syn = G.synthesis
        self.blocks = [getattr(syn, f"b{res}") for res in syn.block_resolutions]
        starts, w_idx = [], 0
        for block in self.blocks:
            starts.append(w_idx)
            w_idx += block.num_conv
        self.ws_start = starts
        self.num_layers = len(self.blocks) - 1

    def _block(self, j: int, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor) -> torch.Tensor:
        block = self.blocks[j]
        block_ws = ws.narrow(1, self.ws_start[j], block.num_conv + block.num_torgb)
        x, img = block(x, img, block_ws, noise_mode="const")  # noise fixed: a latent is one image
        if img is None:  # non-skip architectures draw pixels in the last block only
            img = x.new_zeros(len(x), self.image_channels, *x.shape[2:])
        return torch.cat([x, img], dim=1)

    def synthesis_input(self, ws: torch.Tensor) -> torch.Tensor:
        return self._block(0, None, None, ws)

    def layer(self, i: int, x: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        c = self.image_channels
        f = self._block(i + 1, x[:, :-c], x[:, -c:], ws)
        return self._out(f[:, -c:]) if i == self.num_layers - 1 else f


def load_network_pickle(
    path: str | os.PathLike,
    code_dir: str | os.PathLike | None = None,
    trust_pickle: bool = False,
    image_size: int | None = None,
) -> HierarchicalPrior:
    """Load ``G_ema`` from an NVlabs network pickle and wrap it in the matching adapter.

    ``code_dir``: a checkout of the repository that wrote the pickle (stylegan2-ada-pytorch, stylegan3 or
    stylegan-xl), put on ``sys.path``; without it, that code must already be importable.
    """
    path = Path(path)
    if not trust_pickle:
        raise UserError(
            f"{path} is a pickle and loading it runs code from it; pass --trust-pickle "
            "(trust_pickle=True) if you trust its source"
        )
    if not path.is_file():
        raise UserError(f"no network pickle at {path}")
    if code_dir is not None:
        if not Path(code_dir).is_dir():
            raise UserError(f"--code-dir {code_dir} is not a folder; point it at your NVlabs checkout")
        sys.path.insert(0, str(code_dir))
    try:
        legacy = importlib.import_module("legacy")
        importlib.import_module("dnnlib")
    except ImportError:
        raise UserError(
            "NVlabs pickles need NVlabs' code importable (dnnlib, legacy, torch_utils): clone "
            "the repository that wrote the pickle (stylegan3, stylegan-xl, stylegan2-ada-pytorch) "
            "and pass --code-dir to it"
        ) from None
    with open(path, "rb") as f:
        data = legacy.load_network_pkl(f)
    G = data.get("G_ema") if isinstance(data, dict) else None
    if G is None:
        raise UserError(f"{path} holds no G_ema network; is it a generator pickle?")
    return adapt(G, image_size)


def adapt(G: nn.Module, image_size: int | None = None) -> HierarchicalPrior:
    """The adapter that fits ``G``'s synthesis network; a clear error when none does."""
    syn = getattr(G, "synthesis", None)
    if syn is not None and hasattr(syn, "layer_names") and hasattr(syn, "input"):
        return StyleGAN3Adapter(G, image_size)
    if syn is not None and hasattr(syn, "block_resolutions"):
        return StyleGAN2Adapter(G, image_size)
    raise UserError(
        f"{type(G).__name__} is neither a StyleGAN2 nor a StyleGAN3/XL generator "
        "(its synthesis has no layer_names or block_resolutions)"
    )
