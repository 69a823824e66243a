"""Baselines that produce a synthetic set the same way a method does: random real subset and herding."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from gendistill.artifacts import ImageSet, make_meta
from gendistill.data import ImageDataset, check_ipc, random_subset
from gendistill.errors import UserError
from gendistill.registry import Registry

Selector = Callable[..., torch.Tensor]
SELECTORS: Registry[Selector] = Registry("selection method")


SELECTORS.register("random")(random_subset)


def _embedder(
    dataset: ImageDataset, features: str, generator: torch.Generator, epochs: int, device: torch.device | None
) -> Callable:
    """Feature function for herding: a ConvNet trained on the training split (the field's choice),
    a randomly initialised one, or raw pixels. The network trains and embeds on ``device`` (default: CUDA
    when present); the features come back to the CPU, where herding runs."""
    if features == "pixels":
        return lambda x: x.flatten(1)
    from gendistill.evaluate.recipe import TrainRecipe
    from gendistill.evaluate.trainer import trained_with_progress
    from gendistill.models import create_model
    from gendistill.runtime import Runtime

    device = device or Runtime.resolve().device
    torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
    net = create_model("convnet", dataset.channels, dataset.num_classes, dataset.image_size).to(device)
    if features == "trained":
        recipe = TrainRecipe(epochs=epochs, decay_at=1.0)
        images, labels = dataset.train_images, dataset.train_labels
        trained_with_progress(net, images, labels, recipe, generator, device, "herding: feature network")
    elif features != "random":
        raise UserError(f"unknown herding features {features!r}; use trained, random or pixels")
    net.eval()

    @torch.inference_mode()
    def embed(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net.embed(x[i : i + 1000].to(device)).float().cpu() for i in range(0, len(x), 1000)])

    return embed


def herding_order(feats: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy herding (Welling 2009): each pick brings the running mean closest to the class mean."""
    mu = feats.mean(0)
    chosen: list[int] = []
    total = torch.zeros_like(mu)
    available = torch.ones(len(feats), dtype=torch.bool)
    for step in range(1, k + 1):
        dist = ((mu - (total + feats) / step) ** 2).sum(1)
        dist[~available] = float("inf")
        i = int(dist.argmin())
        chosen.append(i)
        available[i] = False
        total += feats[i]
    return torch.tensor(chosen, dtype=torch.long)


@SELECTORS.register("herding")
def herding(
    dataset: ImageDataset,
    ipc: int,
    generator: torch.Generator,
    features: str = "trained",
    feature_epochs: int = 2,
    device: torch.device | None = None,
) -> torch.Tensor:
    embed = _embedder(dataset, features, generator, feature_epochs, device)
    picks = []
    for idx in dataset.class_indices("train"):
        feats = embed(dataset.train_images[idx]).double()
        picks.append(idx[herding_order(feats, ipc)])
    return torch.cat(picks)


def select(
    dataset: ImageDataset, method: str, ipc: int, seed: int = 0, device: torch.device | None = None, **options
) -> ImageSet:
    """A real subset of ``ipc`` images per class, as an artifact like any distilled set. ``device`` is
    where a selector that trains (herding) trains; it is not part of the recorded settings."""
    selector = SELECTORS.get(method)
    options = selector_settings(method, selector, options)
    check_ipc(dataset, ipc)
    gen = torch.Generator().manual_seed(seed)
    runtime = {"device": device} if _takes(selector, "device") else {}
    idx = selector(dataset, ipc, gen, **options, **runtime)
    config = {"method": method, "ipc": ipc, **options}
    meta = make_meta(method, dataset, ipc, config, seed)
    meta["eval_augment"] = "none"  # the published baselines are trained without augmentation
    meta["train_indices_sha"] = _digest(idx)
    return ImageSet(dataset.train_images[idx].clone(), dataset.train_labels[idx].clone(), meta)


def selector_settings(method: str, selector: Callable, options: dict) -> dict:
    """``options`` over the selector's own defaults (what the artifact records); an option the selector does
    not take is refused, never ignored."""
    params = list(inspect.signature(selector).parameters.values())[3:]  # after (dataset, ipc, generator)
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty and p.name not in RUNTIME}
    wrong = sorted(set(options) - set(defaults))
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        takes = ", ".join("--" + k.replace("_", "-") for k in defaults) or "no options"
        raise UserError(f"{flags} do(es) not apply to --method {method}; it takes {takes}")
    return {**defaults, **options}


RUNTIME = ("device",)  # where a selector runs, not what it selects: never recorded


def _takes(selector: Callable, name: str) -> bool:
    return name in inspect.signature(selector).parameters


def _digest(idx: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(idx.numpy().tobytes()).hexdigest()[:16]
