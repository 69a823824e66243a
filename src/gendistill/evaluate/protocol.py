"""The evaluation protocol: train fresh networks on a set, test them on the real test split."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

import torch

from gendistill.augment import strategy_for
from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.evaluate.recipe import PRESETS, TrainRecipe
from gendistill.evaluate.trainer import TrainingData, accuracy, maybe_compile, train_classifier
from gendistill.models import MODELS, create_model, parse_model_spec
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import pick_device, resolve_precision


@dataclass
class ModelResult:
    model: str
    accuracies: list[float]
    seconds: list[float]
    recipe: dict

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": self.mean, "std": self.std}


@dataclass
class EvalReport:
    dataset: str
    split: str
    preset: str
    device: str
    precision: str
    seed: int
    results: list[ModelResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "results"},
                "results": [r.to_dict() for r in self.results]}  # fmt: skip

    def rows(self) -> list[dict]:
        return [{"model": r.model, "acc %": f"{100 * r.mean:.2f} ± {100 * r.std:.2f}", "runs": len(r.accuracies),
                 "epochs": r.recipe["epochs"], "augment": r.recipe["augment"],
                 "s/run": f"{statistics.fmean(r.seconds):.1f}"} for r in self.results]  # fmt: skip


def resolve_augment(augment: str, dataset: ImageDataset) -> str:
    """``"dsa"`` -> the dataset's DSA strategy (no flips for digits); ``"none"`` or a strategy pass through."""
    return strategy_for(dataset.name) if augment == "dsa" else augment


def evaluate(
    data: TrainingData,
    dataset: ImageDataset,
    models: list[str] | tuple[str, ...] = ("convnet",),
    runs: int = 3,
    preset: str = "paper",
    augment: str = "none",
    seed: int = 0,
    device: str | None = None,
    precision: str = "auto",
    compile: bool | str = "auto",
    split: str = "test",
    lr: float | None = None,
    epochs: int | None = None,
    progress: bool = True,
) -> EvalReport:
    """Train ``runs`` fresh networks of each architecture on ``data`` and test them on real data.

    ``data`` is anything with ``epoch(epoch, generator) -> (images, targets)``: a loaded artifact, a real
    subset, or a generator-backed set that samples anew each epoch. ``lr=None`` uses a learned learning
    rate stored with the data (MTT) if there is one, else the preset's. ``split="val"`` tests on the
    validation split carved from the training set, for choosing anything without touching the test set.
    """
    if runs < 1:
        raise UserError(f"runs must be at least 1, got {runs}")
    if split not in ("test", "val"):
        raise UserError(f"split must be test or val, got {split!r}")
    for spec in models:
        MODELS.get(parse_model_spec(spec)[0])  # fail on a bad name before any training
    dev = pick_device(device)
    amp = resolve_precision(precision, dev)
    overrides = {"epochs": epochs} if epochs else {}
    recipe: TrainRecipe = PRESETS.get(preset).recipe(resolve_augment(augment, dataset), **overrides)
    base_lr = lr if lr is not None else getattr(data, "learned_lr", None)
    test_x, test_y = getattr(dataset, f"{split}_images"), getattr(dataset, f"{split}_labels")
    report = EvalReport(dataset.name, split, preset, str(dev), "bf16" if amp else "fp32", seed)
    total = len(models) * runs * recipe.epochs
    num_images = len(data.epoch(0, torch.Generator().manual_seed(seed))[0])
    with progress_bar(total=total, desc="evaluate", unit="ep", disable=not progress, leave=False) as bar:
        for spec in models:
            accs, secs = [], []
            for run in range(runs):
                run_seed = seed * 1000 + run
                torch.manual_seed(run_seed)
                model = create_model(spec, dataset.channels, dataset.num_classes, dataset.image_size)
                gen = torch.Generator().manual_seed(run_seed)
                bar.set_postfix_str(f"{spec} run {run + 1}/{runs}", refresh=False)
                t0 = time.perf_counter()
                forward = maybe_compile(model, compile, recipe, num_images, dev)
                train_classifier(model, data, recipe, gen, dev, amp, base_lr, forward, on_epoch=lambda _: bar.update())
                accs.append(accuracy(forward, test_x, test_y, dev, amp))
                secs.append(time.perf_counter() - t0)
            used = {**recipe.to_dict(), "lr": base_lr if base_lr is not None else recipe.lr}
            report.results.append(ModelResult(spec, accs, secs, used))
    return report
