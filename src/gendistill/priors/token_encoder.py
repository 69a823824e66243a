"""The conditioning pathway of gendistill's own diffusion prior: K tokens computed from an image.

Stable Diffusion is conditioned on a text encoder's tokens. A prior trained here on unlabeled images has
no text to be conditioned on, so it is conditioned on K tokens of the UNet's cross-attention width that a
small CNN computes from the image itself, trained jointly with the UNet and replaced by the null (all-zero)
conditioning ~10% of the time so that classifier-free guidance has an unconditional branch. Any image can
then be described by K tokens. Diffusion Inversion bypasses this encoder as it bypasses the text encoder;
the encoder's tokens of an image are where its inversion starts (far fewer steps than from the mean).

The tokens are layer-normalised without affine parameters: every token has zero mean and unit variance over
its width, so the noise of ``gendistill generate --noise 0.1`` is 10% of a token's scale, as on Stable
Diffusion's (layer-normalised) text tokens.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.errors import UserError, an
from gendistill.store import open_folder, write_folder

CLASS_NAME = "TokenEncoder"
WEIGHTS = "model"


@dataclass
class TokenEncoderConfig:
    image_channels: int
    tokens: int = 5
    width: int = 64
    channels: int = 32


class TokenEncoder(nn.Module):
    """Three stride-2 convolutions, a 4x4 average pool, one linear map to ``tokens x width``."""

    def __init__(self, config: TokenEncoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(config.image_channels, c, 3, 2, 1),
                nn.Conv2d(c, 2 * c, 3, 2, 1),
                nn.Conv2d(2 * c, 2 * c, 3, 2, 1),
            ]
        )
        self.norms = nn.ModuleList([nn.GroupNorm(8, c), nn.GroupNorm(8, 2 * c), nn.GroupNorm(8, 2 * c)])
        self.out = nn.Linear(2 * c * 16, config.tokens * config.width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [N, C, H, W]`` in [-1, 1] -> tokens ``[N, tokens, width]``."""
        x = images
        for conv, norm in zip(self.convs, self.norms):
            x = F.silu(norm(conv(x)))
        x = F.adaptive_avg_pool2d(x, 4).flatten(1)
        tokens = self.out(x).view(len(images), self.config.tokens, self.config.width)
        return F.layer_norm(tokens, (self.config.width,))

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype = torch.float32, force: bool = False) -> Path:
        tensors = {k: v.detach().to(dtype) for k, v in self.state_dict().items()}
        return write_folder(path, CLASS_NAME, asdict(self.config), {WEIGHTS: tensors}, force)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> TokenEncoder:
        stored = open_folder(path, "token encoder")
        if stored.class_name != CLASS_NAME:
            raise UserError(f"{path} holds {an(stored.class_name)}, not a {CLASS_NAME}")
        fields = TokenEncoderConfig.__dataclass_fields__
        try:
            model = cls(TokenEncoderConfig(**{k: v for k, v in stored.settings().items() if k in fields}))
            model.load_state_dict({k: v.float() for k, v in stored.tensors(WEIGHTS).items()})
        except (TypeError, RuntimeError) as e:
            raise UserError(f"cannot build the token encoder in {path}: {str(e).splitlines()[0]}") from None
        return model.eval().requires_grad_(False)
