"""GAN latents as the synthetic set: GLaD (one layer) and H-GLaD (walking the layers toward pixels).

A sample is ``(ws, f)``: its styles w+ ``[num_ws, w_dim]`` and the feature map ``f`` after the first
``layer`` synthesis layers; its image is the prior's remaining layers applied to ``f``, styled by ``ws``.
``layer = -1`` is GLaD's w+-only variant: no ``f``, the whole synthesis runs from the prior's input.
``advance()`` is H-GLaD's step to the next layer: ``f`` goes through one more layer and becomes the new
``f``; ``ws`` is carried over.

Memory: with ``chunk`` set, rendering runs ``chunk`` samples at a time (:mod:`gendistill.params.chunked`,
GLaD's trick), so IPC 50 needs the memory of one chunk, not of the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn

from gendistill.data import ImageDataset, check_ipc
from gendistill.errors import UserError
from gendistill.params.base import PRIOR_HELP, ParamConfig, Parameterisation, Stages
from gendistill.params.chunked import ChunkedRendering
from gendistill.priors import LAYERS, check_fits, load_prior, prefix, recommended_lr, require, suffix, to_normalized
from gendistill.runtime import autocast
from gendistill.validate import limit

F_CLIP = 10.0  # GLaD clips feature maps to [-10, 10] and zeroes NaNs after every step

# learning rates of (f, w+) per objective, from GLaD's public code (METHODS.md)
LATENT_LR = {"dc": (1.0, 1e-3), "dm": (10.0, 0.01), "mtt": (1e4, 10.0)}
SELECT = ("none", "crfd")


@dataclass(frozen=True)
class LatentConfig(ParamConfig):
    """How a GAN-latent parameterisation is set up.

    ``prior``: a shipped name, a saved folder, an NVlabs .pkl, or a module (None: the prior shipped for
    the dataset). ``layer``: the layer whose feature map is optimised (GLaD; -1 = w+ only) or where the
    walk starts (H-GLaD); None takes the class's default. ``chunk``: render this many samples at a time
    (memory bound). ``lr_f``/``lr_w``: None takes the prior's recorded rates, else GLaD's per objective.
    ``select="crfd"``: keep each stage's lowest-CRFD snapshot, scored every ``select_every`` iterations
    (0: five times a stage).
    """

    prior: Any = limit(None, help=PRIOR_HELP)
    layer: int | None = limit(
        None,
        ge=-1,
        help="glad: the layer to optimise (-1: w+ only; default 2); hglad: the first layer of the walk (default 1)",
    )
    chunk: int | None = limit(None, ge=1, help="render this many samples at a time to bound memory")
    lr_f: float | None = limit(None, gt=0, help="learning rate of the feature maps (default: GLaD's per objective)")
    lr_w: float | None = limit(None, gt=0, help="learning rate of w+ (default: GLaD's per objective)")
    truncation: float = limit(1.0, gt=0, help="glad/hglad: truncation of the initial latents (1: none)")
    select: str = limit("none", help="glad/hglad: keep each stage's lowest-CRFD snapshot", choices=SELECT)
    select_every: int = limit(
        0, ge=0, hint="0 scores five times a stage", help="iterations between CRFD scores (0: five a stage)"
    )
    code_dir: str | None = limit(None, help="NVlabs .pkl priors: the checkout of the code that wrote the pickle")
    trust_pickle: bool = limit(False, help="NVlabs .pkl priors: allow unpickling (runs code)")

    default_layer: ClassVar[int] = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.select not in SELECT:
            raise UserError(f"unknown snapshot selection {self.select!r}; use {' or '.join(SELECT)}")

    def first_layer(self) -> int:
        return self.layer if self.layer is not None else self.default_layer

    def prior_ref(self) -> str:
        return self.prior if isinstance(self.prior, str) or self.prior is None else type(self.prior).__name__

    def resolved(self, dataset: ImageDataset, objective: str) -> LatentConfig:
        """Every default filled in: the dataset's prior, the layer, the learning rates."""
        prior = self.prior if self.prior is not None else dataset.name
        rates = recommended_lr(prior, objective) or LATENT_LR.get(objective)
        if rates is None and (self.lr_f is None or self.lr_w is None):
            raise UserError(
                f"no published feature and latent learning rates for the {objective} objective; "
                "pass --lr-f and --lr-w (GLaD's: "
                + ", ".join(f"{k} {f:g}/{w:g}" for k, (f, w) in LATENT_LR.items())
                + ")"
            )
        lr_f, lr_w = rates or (self.lr_f, self.lr_w)
        return replace(
            self,
            prior=prior,
            layer=self.first_layer(),
            lr_f=self.lr_f if self.lr_f is not None else lr_f,
            lr_w=self.lr_w if self.lr_w is not None else lr_w,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "prior": self.prior_ref()}


@dataclass(frozen=True)
class GladConfig(LatentConfig):
    """GLaD: one layer's feature map and w+ (default layer 2)."""


@dataclass(frozen=True)
class HGladConfig(LatentConfig):
    """H-GLaD: start at ``layer`` (default 1) and walk one layer toward pixels per stage."""

    default_layer: ClassVar[int] = 1


class GanLatents(ChunkedRendering, Parameterisation):
    name = "glad"
    config: LatentConfig

    def __init__(
        self,
        prior: nn.Module,
        ws: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        layer: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        lr_f: float,
        lr_w: float,
        chunk: int | None = None,
    ) -> None:
        super().__init__(labels, num_classes)
        # kept out of the module tree: the prior is frozen and must not enter checkpoints or state_dict
        self.__dict__["prior"] = prior
        self.mean, self.std, self.lr_f, self.lr_w = mean, std, lr_f, lr_w
        self._init_chunks(chunk)
        self.config = self.Config(layer=layer, chunk=chunk, lr_f=lr_f, lr_w=lr_w)  # build() sets the full one
        self.ws = nn.Parameter(ws.clone())
        self.register_buffer("layer", torch.tensor(layer))
        self.f = nn.Parameter(self._features(layer)) if layer >= 0 else None

    Config = GladConfig

    @classmethod
    def create(
        cls,
        dataset: ImageDataset,
        ipc: int,
        prior: nn.Module,
        layer: int,
        generator: torch.Generator,
        lr_f: float,
        lr_w: float,
        chunk: int | None = None,
        truncation: float = 1.0,
    ) -> GanLatents:
        """w from the prior's class-conditional mapping of random z (GLaD's init), ``f`` from those w."""
        check_ipc(dataset, ipc)
        check_fits(prior, dataset)
        if not -1 <= layer < prior.num_layers:
            raise UserError(f"layer must be in -1 .. {prior.num_layers - 1} for this prior, got {layer}")
        labels = torch.arange(dataset.num_classes).repeat_interleave(ipc)
        device = next(prior.parameters()).device
        z = torch.randn(len(labels), prior.z_dim, generator=generator).to(device)
        with torch.no_grad():
            ws = prior.mapping(z, labels.to(device), truncation)
        return cls(prior, ws, labels, dataset.num_classes, layer, dataset.mean, dataset.std, lr_f, lr_w, chunk)

    def _apply(self, fn, recurse: bool = True):
        """``.to(device)`` moves the prior too, though it is not a submodule."""
        self.prior._apply(fn)
        return super()._apply(fn, recurse)

    @classmethod
    def build(
        cls,
        dataset: ImageDataset,
        ipc: int,
        config: LatentConfig,
        generator: torch.Generator,
        device: torch.device | None = None,
        objective: str = "dm",
    ) -> GanLatents:
        config = config.resolved(dataset, objective)
        prior = load_prior(config.prior, config.code_dir, config.trust_pickle, dataset.image_size)
        require(prior, LAYERS, f"--param {cls.name}")
        prior.to(device or torch.device("cpu"))
        params = cls.create(
            dataset,
            ipc,
            prior,
            config.first_layer(),
            generator,
            config.lr_f,
            config.lr_w,
            config.chunk,
            config.truncation,
        )
        params.config = config
        return params

    def _stage_count(self) -> int:
        return 1

    def stages(self, iterations: int) -> Stages:
        """GLaD: one stage; H-GLaD: the iterations split evenly over the layers from the first to the last
        feature map. Either may keep its lowest-CRFD snapshot (of each stage), by default five times a stage."""
        count = self._stage_count()
        per_stage = max(1, iterations // count)
        select_every = self.config.select_every or max(1, per_stage // 5)
        return Stages(
            every=per_stage if count > 1 else 0, select_every=select_every if self.config.select != "none" else 0
        )

    def stage_info(self) -> dict:
        return {"layer": self.k}

    @property
    def k(self) -> int:
        return int(self.layer)

    @torch.no_grad()
    def _features(self, k: int) -> torch.Tensor:
        return torch.cat([prefix(self.prior, self.ws[i], k) for i in self._chunks(len(self.labels))])

    # --- rendering ---
    def _render(self, idx: torch.Tensor | slice) -> torch.Tensor:
        ws = self.ws[idx]
        f = self.f[idx] if self.f is not None else self.prior.synthesis_input(ws)
        k = max(self.k, 0)
        with autocast(ws.device, self.amp):  # the prior's layers in bf16 when asked; ws and f stay fp32
            images = suffix(self.prior, f, ws, k)
        return to_normalized(images.float(), self.mean, self.std)

    # --- what the engine asks of a parameterisation ---
    def param_groups(self, lr: float) -> list[dict]:
        groups = [{"params": [self.ws], "lr": self.lr_w}]
        if self.f is not None:
            groups.insert(0, {"params": [self.f], "lr": self.lr_f})
        return groups

    @torch.no_grad()
    def after_step(self) -> None:
        if self.f is not None:
            torch.nan_to_num_(self.f, nan=0.0)
            self.f.clamp_(-F_CLIP, F_CLIP)

    def can_advance(self) -> bool:
        return 0 <= self.k < self.prior.num_layers - 1

    @torch.no_grad()
    def advance(self) -> None:
        """H-GLaD: push ``f`` through layer ``k`` to become the features at layer ``k + 1``."""
        k = self.k
        f = torch.cat([self.prior.layer(k, self.f[s], self.ws[s]) for s in self._chunks(len(self.labels))])
        self.f = nn.Parameter(f)
        self.layer.fill_(k + 1)

    def load_state_dict(self, state: dict, strict: bool = True):
        """Resume at whatever layer the state was saved: ``f`` takes the saved shape first."""
        if "f" in state:
            self.f = nn.Parameter(torch.empty_like(state["f"], device=self.ws.device))
        return super().load_state_dict(state, strict)

    def extra_tensors(self) -> dict[str, torch.Tensor]:
        out = {"latent.ws": self.ws.detach().cpu()}
        if self.f is not None:
            out["latent.f"] = self.f.detach().cpu()
        return out

    def describe(self) -> dict:
        prior = getattr(self.prior, "pretrained_config", {"class": type(self.prior).__name__})
        return {"layer": self.k, "num_layers": int(self.prior.num_layers), "prior_config": prior}


class Glad(GanLatents):
    """GLaD (Cazenavette et al. 2023): one fixed layer."""

    name = "glad"
    Config = GladConfig


class HGlad(GanLatents):
    """H-GLaD (Zhong et al. 2024): the walk from ``layer`` to the last feature map, one stage a layer."""

    name = "hglad"
    Config = HGladConfig

    def _stage_count(self) -> int:
        return self.prior.num_layers - self.config.first_layer()  # fixed at the start, whatever stage it is in
