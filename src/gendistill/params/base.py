"""Where the synthetic data lives. A parameterisation owns its learnable tensors and renders labeled
images differentiably; the engine optimises its parameters, the objective only sees rendered images."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from gendistill.artifacts import Artifact, ImageSet
from gendistill.validate import check_fields

if TYPE_CHECKING:
    from gendistill.data import ImageDataset


@dataclass(frozen=True)
class Stages:
    """How a parameterisation's run is cut into stages, and how a stage's snapshot is chosen.

    ``every``: iterations per stage; after each the engine calls ``advance()`` (0: a single stage).
    ``select_every``: score the snapshot every so many iterations and restore the stage's best at its end
    (H-GLaD's CRFD selection; 0: keep the last state).
    """

    every: int = 0
    select_every: int = 0


PRIOR_HELP = "a shipped prior, a folder from 'gendistill prior train', or an NVlabs .pkl (default: the dataset's)"


@dataclass(frozen=True)
class ParamConfig:
    """Base of the frozen settings a parameterisation is built from; ``to_dict`` is what artifacts record.
    Subclasses type their fields and bound them with :func:`gendistill.validate.limit`; building one checks
    every value (a subclass's own ``__post_init__`` calls this one first)."""

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: v if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__
            for k, v in asdict(self).items()
        }


class Parameterisation(nn.Module):
    """Base class: ``labels`` is a buffer (images are ordered by class), ``render()`` gives all images.

    Subclasses register their learnable tensors as ``nn.Parameter`` and implement ``render``; they name
    their frozen ``Config`` dataclass and build themselves from it with ``build``. The engine checkpoints
    ``state_dict()``; ``extra_tensors`` is what the artifact keeps beside the images.
    """

    labels: torch.Tensor
    name: ClassVar[str] = "parameterisation"
    Config: ClassVar[type[ParamConfig]] = ParamConfig
    config: ParamConfig
    momentum: ClassVar[float] = 0.5  # the field's SGD momentum for synthetic data (DC, DM, GLaD)
    # Tensors every class shares (a generator's weights): under torchrun each rank holds all of them, the
    # engine sums their gradients over ranks every step, and no per-class merge happens at the end.
    shared: ClassVar[bool] = False
    takes_image_lr: ClassVar[bool] = True  # whether the method's image learning rate (``--lr``) applies
    amp: torch.dtype | None = None

    @classmethod
    def build(
        cls,
        dataset: ImageDataset,
        ipc: int,
        config: ParamConfig,
        generator: torch.Generator,
        device: torch.device,
        objective: str,
    ) -> Parameterisation:
        """The parameterisation of ``ipc`` images per class of ``dataset``; ``objective`` may pick defaults."""
        raise NotImplementedError

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

    def optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        """The optimiser of its tensors (and of the objective's, appended to ``groups``): SGD with momentum
        here, as the field uses for images and latents; a generator's weights would take Adam."""
        return torch.optim.SGD([{**g, "momentum": self.momentum} for g in groups])

    def set_precision(self, amp: torch.dtype | None) -> None:
        """Render under autocast ``amp`` (None: fp32); the images come out fp32 either way. Pixels render
        nothing, so this only matters where a network renders (a prior)."""
        self.amp = amp

    def render_rows_with_graph(self, rows: torch.Tensor) -> torch.Tensor:
        """The images of ``rows`` rendered with their autograd graph (what memory estimates measure)."""
        return self.render()[rows]

    def graph_images(self, n: int) -> int:
        """How many of ``n`` images have their rendering graph held at once (all, unless chunked)."""
        return n

    def stages(self, iterations: int) -> Stages:
        """How ``iterations`` are cut into stages (one, unless the parameterisation walks somewhere)."""
        return Stages()

    def stage_info(self) -> dict:
        """What the run's history records about the current stage when it ends."""
        return {}

    def finish_backward(self) -> None:
        """After ``loss.backward()``: complete gradients that ``render`` deferred (chunked rendering)."""

    def after_step(self) -> None:
        """After each optimiser step: projections such as clipping."""

    def begin_iteration(self, iteration: int) -> None:
        """Before an iteration's losses: per-iteration draws (a generator's fresh codes), a pure function of
        the seed and ``iteration`` so that resume and sharding stay exact."""

    def end_iteration(self) -> None:
        """After an iteration's steps: what ``begin_iteration`` drew stops applying."""

    def can_advance(self) -> bool:
        """Whether there is a next stage (H-GLaD's next layer)."""
        return False

    def advance(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} has a single stage")

    def describe(self) -> dict:
        """What the artifact's config records about this parameterisation's state (beyond its config)."""
        return {}

    def storage_bytes(self) -> int:
        """Bytes a user keeps of the artifact this run would leave now (pixels and labels, or a model)."""
        return self.to_artifact({}).storage_bytes()

    @torch.no_grad()
    def to_image_set(self, meta: dict, lr: torch.Tensor | None = None) -> ImageSet:
        """The rendered images as a fixed image set (what validation trains on)."""
        images = self.render().detach().float().cpu()
        return ImageSet(images, self.labels.cpu(), meta, lr=lr, extra=self.extra_tensors())

    def to_artifact(self, meta: dict, lr: torch.Tensor | None = None) -> Artifact:
        """What the run leaves behind: the rendered images, unless the parameterisation is a model."""
        return self.to_image_set(meta, lr)
