"""The evaluation protocol: train fresh networks on a set, test them on the real test split."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from gendistill.augment import strategy_for
from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.evaluate.recipe import PRESETS, TrainRecipe, recipe_for
from gendistill.evaluate.teacher import SoftLabels, TeacherSpec, teacher
from gendistill.evaluate.trainer import TrainingData, accuracy, batches, maybe_compile, train_classifier
from gendistill.models import create_model, expand_models
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import Runtime

NEAR_CHANCE = 0.10  # a run ending within this of chance accuracy did not train: flagged, never hidden


@dataclass
class ModelResult:
    model: str
    accuracies: list[float]
    seconds: list[float]
    recipe: dict
    chance: float = 0.0  # 1 / number of classes

    @property
    def near_chance(self) -> list[int]:
        """Indices of the runs that ended within ``NEAR_CHANCE`` of chance: they are in the mean and marked."""
        return [i for i, a in enumerate(self.accuracies) if a < self.chance + NEAR_CHANCE]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": self.mean, "std": self.std, "near_chance": self.near_chance}


@dataclass
class EvalReport:
    dataset: str
    split: str
    preset: str
    device: str
    precision: str
    seed: int
    results: list[ModelResult] = field(default_factory=list)
    reading: str = ""  # which images were trained on, for a model artifact (see evaluate.readings)
    stored_bytes: int | None = None  # what the evaluated artifact costs to keep
    teacher: dict | None = None  # the soft-label protocol's teacher: its spec, test accuracy, training time

    def to_dict(self) -> dict:
        out = {
            **{k: v for k, v in asdict(self).items() if k != "results"},
            "results": [r.to_dict() for r in self.results],
        }
        if len(self.results) > 1:
            out["over_networks"] = self.over_networks()
        return out

    def over_networks(self) -> dict:
        """The mean over networks, and its spread: the std over runs of the per-run mean over networks
        (run i of every network shares a seed), so it says how much the mean itself moves between runs."""
        runs = min(len(r.accuracies) for r in self.results)
        per_run = [statistics.fmean(r.accuracies[i] for r in self.results) for i in range(runs)]
        return {
            "models": [r.model for r in self.results],
            "mean": statistics.fmean(r.mean for r in self.results),
            "std": statistics.pstdev(per_run) if runs > 1 else 0.0,
            "per_run": per_run,
        }

    def rows(self) -> list[dict]:
        rows = [
            {
                "model": r.model,
                "acc %": f"{100 * r.mean:.2f} ± {100 * r.std:.2f}",
                "runs": len(r.accuracies),
                "near chance": f"{len(r.near_chance)} of {len(r.accuracies)}" if r.near_chance else "",
                "epochs": r.recipe["epochs"],
                "augment": r.recipe["augment"],
                "schedule": r.recipe["schedule"],
                "s/run": f"{statistics.fmean(r.seconds):.1f}",
            }
            for r in self.results
        ]
        if len(self.results) > 1:
            over = self.over_networks()
            rows.append(
                {
                    "model": f"mean of {len(self.results)}",
                    "acc %": f"{100 * over['mean']:.2f} ± {100 * over['std']:.2f}",
                    "runs": len(over["per_run"]),
                }
            )
        return rows

    def warnings(self) -> list[str]:
        """One line per run that ended near chance: such a run is a failed training, not a low score."""
        return [
            f"{r.model} run {i + 1} ended at {100 * r.accuracies[i]:.2f}%, within "
            f"{100 * NEAR_CHANCE:.0f} points of chance ({100 * r.chance:.1f}%): it did not train; it is kept "
            f"in the mean and marked"
            for r in self.results
            for i in r.near_chance
        ]


def resolve_augment(augment: str, dataset: ImageDataset) -> str:
    """``"dsa"`` -> the dataset's DSA strategy (no flips for digits); ``"none"`` or a strategy pass through."""
    return strategy_for(dataset.name) if augment == "dsa" else augment


def _learned_lr_for(model_recipe: TrainRecipe, preset: TrainRecipe, learned: float | None) -> float | None:
    """A learned learning rate (MTT's) is an SGD step size, learned for SGD training: it applies to the
    networks a preset trains with SGD, never to one whose own recipe sets its optimiser or rate (AlexNet's
    AdamW at lr 1e-3 diverges to chance under MTT's learned SGD rate of ~0.01-0.03, measured),
    nor to a preset that trains with another optimiser (``soft``'s AdamW at 1e-3 took MTT's set from
    ~86% to 82.3% under a learned 0.016, measured)."""
    own = model_recipe.optimizer != preset.optimizer or model_recipe.lr != preset.lr
    return None if own or model_recipe.optimizer != "sgd" else learned


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
    per_arch: bool = True,
    overrides: dict | None = None,
) -> EvalReport:
    """Train ``runs`` fresh networks of each architecture on ``data`` and test them on real data.

    ``data`` is anything with ``epoch(epoch, generator) -> (images, targets)``: a loaded artifact, a real
    subset, or a generator-backed set that samples anew each epoch; a generator set trains on its
    fixed set (reading a; :func:`~gendistill.evaluate.readings.training_data` gives the other readings).
    ``lr=None`` uses a learned learning rate stored with the data (MTT) if there is one, else the preset's.
    ``split="val"`` tests on the validation split carved from the training set, for choosing anything
    without touching the test set.
    ``models`` may name pools (``"cross"``). ``per_arch`` applies the registered per-architecture
    departures from the preset (``ARCH_RECIPES``); off, every network trains with the preset as is.
    ``overrides`` (recipe fields, e.g. ``{"optimizer": "adamw"}``) apply last, to every network.
    """
    if runs < 1:
        raise UserError(f"runs must be at least 1, got {runs}")
    if not hasattr(data, "epoch") and hasattr(data, "training_set"):
        data = data.training_set()  # an artifact that is not itself a set (a generator's): its fixed set, reading (a)
    if split not in ("test", "val"):
        raise UserError(f"split must be test or val, got {split!r}")
    models = expand_models(models)
    rt = Runtime.resolve(device, precision)
    dev, amp = rt.device, rt.amp
    preset_overrides = {"epochs": epochs} if epochs else {}
    unknown = set(overrides or {}) - set(TrainRecipe.__dataclass_fields__)
    if unknown:
        raise UserError(f"unknown recipe field(s) {sorted(unknown)}; valid: {sorted(TrainRecipe.__dataclass_fields__)}")
    protocol = PRESETS.get(preset)
    recipe: TrainRecipe = protocol.recipe(resolve_augment(augment, dataset), **preset_overrides)
    learned_lr = getattr(data, "learned_lr", None) if lr is None else None
    test_x, test_y = getattr(dataset, f"{split}_images"), getattr(dataset, f"{split}_labels")
    report = EvalReport(dataset.name, split, preset, str(dev), "bf16" if amp else "fp32", seed)
    relabel = None
    if protocol.labels == "soft":
        teacher_model, report.teacher = teacher(dataset, TeacherSpec(**dict(protocol.teacher)), dev, amp=amp)
        relabel = SoftLabels(teacher_model, protocol.temperature, amp)
    recipes = {m: replace(recipe_for(m, recipe, per_arch), **(overrides or {})) for m in models}
    num_images = len(data.epoch(0, torch.Generator().manual_seed(seed))[0])
    total = sum(batches(num_images, recipes[m]) for m in models) * runs
    with progress_bar(total=total, desc="evaluate", unit="batch", disable=not progress, leave=False) as bar:
        for spec in models:
            model_recipe = recipes[spec]
            base_lr = lr if lr is not None else _learned_lr_for(model_recipe, recipe, learned_lr)
            accs, secs = [], []
            for run in range(runs):
                run_seed = seed * 1000 + run
                torch.manual_seed(run_seed)
                model = create_model(spec, dataset.channels, dataset.num_classes, dataset.image_size)
                gen = torch.Generator().manual_seed(run_seed)
                bar.set_postfix_str(f"{spec} run {run + 1}/{runs}", refresh=False)
                t0 = time.perf_counter()
                forward = maybe_compile(model, compile, model_recipe, num_images, dev)
                tested = train_classifier(
                    model,
                    data,
                    model_recipe,
                    gen,
                    dev,
                    amp,
                    base_lr,
                    forward,
                    on_batch=bar.update,
                    relabel=relabel,
                )
                accs.append(accuracy(tested, test_x, test_y, dev, amp))
                secs.append(time.perf_counter() - t0)
            used = {**model_recipe.to_dict(), "lr": base_lr if base_lr is not None else model_recipe.lr}
            report.results.append(ModelResult(spec, accs, secs, used, 1.0 / dataset.num_classes))
    return report
