"""What an objective sees: per-class real batches, the rendered synthetic images, fresh networks and
siamese augmentation, all drawn from randomness that is a pure function of (seed, iteration, ...).

That last property is what makes a resumed run identical to an uninterrupted one, and a run sharded over
classes identical to a single-process run: no random state has to be carried between iterations. What is
carried by design (a network DiM trains online, a GAN critic) is handed to the checkpoints through
``carried_state``/``restore_state``."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import torch
from torch import nn

from gendistill.augment import DSA
from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.models import Classifier, create_model
from gendistill.params import Parameterisation
from gendistill.runtime import autocast, derived_seed
from gendistill.validate import check_fields


@dataclass
class MatchContext:
    dataset: ImageDataset
    model: str = "convnet"
    augment: DSA | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    real_batch: int = 256
    classes: list[int] | None = None  # the classes this process owns; None = all
    compile: bool = False  # torch.compile the no-grad real-image forward (pays off after ~20 iterations)
    amp: torch.dtype | None = None  # bf16: the matching network's forwards (and backwards) under autocast

    def __post_init__(self) -> None:
        if self.classes is None:
            self.classes = list(range(self.dataset.num_classes))
        self._index = self.dataset.class_indices("train")
        self._published: tuple[int, torch.Tensor, torch.Tensor] | None = None
        self._images: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def publish_features(self, iteration: int, features: torch.Tensor, labels: torch.Tensor) -> None:
        """An objective shares the synthetic features it computed (fp32, with their graph), so regularisers
        that need features of the same network reuse them instead of rendering and embedding again."""
        self._published = iteration, features, labels

    def publish_images(self, iteration: int, images: torch.Tensor, labels: torch.Tensor) -> None:
        """An objective shares the synthetic images it rendered (with their graph), so regularisers that need
        the images themselves (a classifier's, a critic's view) do not render them through a generator again."""
        self._images = iteration, images, labels

    def synthetic_images(self, params: Parameterisation, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of this process's synthetic set at ``iteration``: what the objective published,
        else rendered here."""
        if self._images is not None and self._images[0] == iteration:
            return self._images[1], self._images[2]
        return params.render_classes(self.classes), params.labels[params.class_mask(self.classes)]

    def synthetic_features(self, params: Parameterisation, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, labels) of this process's synthetic images under the matching network of
        ``iteration``: what the objective published, else one embedding under that fresh network."""
        if self._published is not None and self._published[0] == iteration:
            return self._published[1], self._published[2]
        net = self.fresh_model(iteration)
        net.train().requires_grad_(False)
        images = params.render_classes(self.classes)
        with self.autocast():
            features = net.embed(images).float()
        return features, params.labels[params.class_mask(self.classes)]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Where the matching network runs: bf16 autocast when ``amp`` is set, else plain fp32.

        Only the network's forwards (and so their backwards) go under it. What must stay fp32 does: the
        learnable tensors and the optimiser's state are fp32 parameters; the augmentation runs before it;
        the objectives cast the network's outputs to fp32 before reducing them to a loss (means, squared
        distances, cosines), since a bf16 sum over thousands of terms loses the small differences that
        matching is made of.
        """
        return autocast(self.device, self.amp)

    def rng(self, iteration: int, *salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(derived_seed(self.seed, iteration, *salt))

    def fresh_model(self, iteration: int, *salt: int) -> Classifier:
        """A randomly initialised network, the same for every process at a given iteration."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(self.seed, iteration, -1, *salt))
            net = create_model(self.model, self.dataset.channels, self.dataset.num_classes, self.dataset.image_size)
        return net.to(self.device)

    def real_batch_of(self, c: int, generator: torch.Generator, size: int | None = None) -> torch.Tensor:
        """``size`` (default ``real_batch``) distinct real images of class ``c``."""
        idx = self._index[c]
        pick = idx[torch.randperm(len(idx), generator=generator)[: size or self.real_batch]]
        return self.dataset.train_images[pick].to(self.device, non_blocking=True)

    def embed_real(self, net: Classifier, batches: list[torch.Tensor]) -> list[torch.Tensor]:
        """``net.embed`` of each real batch without a graph, one batch (one class) per forward pass.

        Not one pass over all classes: on a CPU a 2,560-image pass streams gigabyte-sized activations
        through memory and ran 2x slower than ten 256-image passes. Compiled, the norm, activation and
        pooling after each convolution fuse into one memory pass; the compiled code takes the network
        as an input, so each iteration's fresh network reuses it.
        """
        if not self.compile:
            with torch.no_grad():
                return [net.embed(b) for b in batches]
        # Canonical strides: a one-channel image has two valid layouts, and each would be compiled anew.
        with torch.no_grad():
            return [_compiled_embed()(net, b.clone(memory_format=torch.contiguous_format)) for b in batches]


def _embed(net: Classifier, x: torch.Tensor) -> torch.Tensor:
    return net.embed(x)


@functools.cache
def _compiled_embed():
    return torch.compile(_embed, dynamic=False)


def has_batch_norm(net: nn.Module) -> bool:
    """Batch statistics couple the samples of a batch, so classes must not share a forward pass."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


@dataclass(frozen=True)
class ObjectiveConfig:
    """Base of an objective's frozen settings (the ``--set KEY=VALUE`` options), each value checked on
    construction (:func:`gendistill.validate.check_fields`; a subclass's ``__post_init__`` calls this first)."""

    def __post_init__(self) -> None:
        check_fields(self)


class Objective:
    """Yields the losses of one iteration; after each, the engine backpropagates and steps the optimiser.

    DC yields once per outer loop and trains its network on the updated images in between; DM and MTT
    yield once. ``learnables`` are tensors the objective adds to the optimisation (MTT's learning rate).
    Each objective names its frozen ``Config``; ``settings`` is that config with every default resolved
    (for this IPC), and it is what artifacts record.
    """

    name = "objective"
    # forward graphs of the matching network held per synthetic image (for memory estimates)
    graphs_per_image: ClassVar[int] = 1
    Config: ClassVar[type[ObjectiveConfig]] = ObjectiveConfig
    settings: ObjectiveConfig

    def __init__(self, ipc: int, config: ObjectiveConfig | None = None) -> None:
        self.ipc = ipc
        self.settings = config or self.Config()

    @classmethod
    def from_options(cls, ipc: int, options: dict | None = None) -> Objective:
        """Build from ``--set``-style options; an unknown key is one line listing the known ones."""
        options = dict(options or {})
        known = [f.name for f in fields(cls.Config)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            takes = ", ".join(known) if known else "no options"
            raise UserError(f"{cls.name} takes no option(s) {', '.join(unknown)}; it takes: {takes}")
        return cls(ipc, cls.Config(**options))

    def losses(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> Iterator[torch.Tensor]:
        raise NotImplementedError

    def learnables(self) -> list[tuple[str, nn.Parameter, float]]:
        return []

    def config(self) -> dict:
        return asdict(self.settings)

    def artifact_lr(self) -> torch.Tensor | None:
        """A learned learning rate the evaluation should train with (MTT), or None."""
        return None

    def carried_state(self) -> dict[str, torch.Tensor]:
        """Tensors carried from one iteration to the next (a network trained online), for checkpoints.
        Objectives whose randomness is all drawn per iteration carry none."""
        return {}

    def restore_state(self, state: dict[str, torch.Tensor], ctx: MatchContext) -> None:
        """Take back what :meth:`carried_state` gave, on resume."""
