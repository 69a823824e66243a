"""Expert trajectories for MTT: networks trained on real data, their parameters saved every epoch.

A trajectory folder (:mod:`gendistill.store`, ``_class_name`` ``"Trajectories"``) holds
``expert_000.safetensors`` ... (tensor ``epoch_E`` = the flat parameter vector after E epochs,
E = 0 .. epochs) and ``config.json`` (model spec, parameter names and shapes in order, recipe, seed).
Training is resumable at expert granularity: finished experts are kept. Folders of format 1 (an
``experts.json`` index) read unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from gendistill.augment import strategy_for
from gendistill.data import ImageDataset
from gendistill.errors import UserError, an
from gendistill.evaluate.recipe import TrainRecipe
from gendistill.evaluate.trainer import train_classifier
from gendistill.models import create_model
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import derived_seed
from gendistill.store import open_folder, read_tensors, save_file_atomic, write_config
from gendistill.validate import MAX_EPOCHS, check_fields, limit

CLASS_NAME = "Trajectories"


@dataclass
class ExpertSpec:
    dataset: str
    model: str
    epochs: int = limit(50, ge=1, le=MAX_EPOCHS)
    lr: float = limit(0.01, gt=0)
    momentum: float = limit(0.0, ge=0, lt=1)
    weight_decay: float = limit(0.0, ge=0)
    batch_size: int = limit(256, ge=1)
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)


def flatten(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).cpu()


def param_layout(net: nn.Module) -> list[tuple[str, list[int]]]:
    return [(name, list(p.shape)) for name, p in net.named_parameters()]


def unflatten(flat: torch.Tensor, layout: list[tuple[str, list[int]]]) -> dict[str, torch.Tensor]:
    """Views of one flat vector as named parameters, for ``torch.func.functional_call``."""
    out, offset = {}, 0
    for name, shape in layout:
        n = int(torch.tensor(shape).prod()) if shape else 1
        out[name] = flat[offset : offset + n].view(shape)
        offset += n
    return out


def train_experts(
    dataset: ImageDataset,
    out: Path,
    num: int,
    spec: ExpertSpec,
    progress: bool = True,
    amp: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Path:
    """Train ``num`` experts into ``out`` (finished ones are kept) on ``device`` (default CPU); ``amp``: bf16
    autocast for their forwards (the saved parameters are fp32 on CPU either way). Experts already saved
    must share the precision."""
    device = device or torch.device("cpu")
    out.mkdir(parents=True, exist_ok=True)
    probe = create_model(spec.model, dataset.channels, dataset.num_classes, dataset.image_size)
    index = {
        "spec": asdict(spec),
        "dataset": dataset.name,
        "layout": param_layout(probe),
        "num_params": sum(p.numel() for p in probe.parameters()),
        "precision": "bf16" if amp is not None else "fp32",
    }
    if any(out.iterdir()):
        old = open_folder(out, "trajectory folder")
        if old.class_name != CLASS_NAME:
            raise UserError(f"{out} holds {an(old.class_name)}, not expert trajectories; choose another --out")
        trained = old.config.get("precision", "fp32")
        if trained != index["precision"]:
            raise UserError(
                f"{out} holds experts trained in {trained}; train the rest with --precision {trained}, "
                "or choose another --out"
            )
        if old.config["spec"] != index["spec"]:
            raise UserError(f"{out} holds experts of another recipe ({old.config['spec']}); choose another --out")
    write_config(out, CLASS_NAME, index)
    recipe = TrainRecipe(
        epochs=1,
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        batch_size=spec.batch_size,
        decay_at=2.0,
        augment=strategy_for(dataset.name) if spec.augment else "none",
    )
    from gendistill.artifacts import ImageSet

    real = ImageSet(dataset.train_images, dataset.train_labels)
    for i in progress_bar(range(num), desc="experts", disable=not progress):
        path = out / f"expert_{i:03d}.safetensors"
        if path.is_file():
            continue
        torch.manual_seed(derived_seed(spec.seed, i))
        net = create_model(spec.model, dataset.channels, dataset.num_classes, dataset.image_size).to(device)
        gen = torch.Generator().manual_seed(derived_seed(spec.seed, i, 1))
        snapshots = {"epoch_0": flatten(net)}
        opt = recipe.make_optimizer(net.parameters())
        for epoch in range(1, spec.epochs + 1):  # one call per epoch; the optimiser (momentum) carries over
            train_classifier(net, real, recipe, gen, device, amp, optimizer=opt)
            snapshots[f"epoch_{epoch}"] = flatten(net)
        save_file_atomic(snapshots, path)
    return out


class Trajectories:
    """Read access to a trajectory folder, one expert file in memory at a time."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(
                f"no expert trajectories in {self.root}; make them with 'gendistill experts --out {self.root}'"
            )
        stored = open_folder(self.root, "trajectory folder")
        if stored.class_name != CLASS_NAME:
            raise UserError(f"{self.root} holds {an(stored.class_name)}, not expert trajectories")
        self.index = stored.settings()
        self.files = sorted(self.root.glob("expert_*.safetensors"))
        if not self.files:
            raise UserError(f"{self.root} has no finished expert yet; run 'gendistill experts' to completion")
        self.layout = [(n, s) for n, s in self.index["layout"]]
        self.epochs = self.index["spec"]["epochs"]
        self.dataset: str | None = self.index.get("dataset")  # not recorded by the first format
        self._cache: tuple[int, dict] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def params(self, expert: int, epoch: int) -> torch.Tensor:
        if self._cache is None or self._cache[0] != expert:
            self._cache = (expert, read_tensors(self.files[expert], self.root))
        return self._cache[1][f"epoch_{epoch}"]
