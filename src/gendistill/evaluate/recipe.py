"""Training recipes of the evaluation protocol, and their named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from gendistill.registry import Registry


@dataclass(frozen=True)
class TrainRecipe:
    """How a fresh network is trained on a (synthetic) set.

    The field's protocol: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, lr x0.1 once at
    half of training; 300 epochs without augmentation, 1000 with DSA augmentation.
    """

    epochs: int
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    decay_at: float = 0.5
    augment: str = "none"  # a DSA strategy string, or "none"

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        lr = self.lr if base_lr is None else base_lr
        return lr * 0.1 if epoch >= int(self.epochs * self.decay_at) else lr

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Preset:
    """A named protocol: epochs without and with augmentation; the rest of the recipe is shared."""

    name: str
    epochs_plain: int
    epochs_augmented: int
    description: str

    def recipe(self, augment: str = "none", **overrides) -> TrainRecipe:
        epochs = self.epochs_plain if augment in ("none", "") else self.epochs_augmented
        return replace(TrainRecipe(epochs=epochs, augment=augment or "none"), **overrides)


PRESETS: Registry[Preset] = Registry("preset")
for _p in (
    Preset("paper", 300, 1000, "the published protocol: 300 epochs plain, 1000 with DSA augmentation"),
    Preset("quick", 30, 100, "a smoke check, NOT comparable with published numbers: 30 epochs plain, 100 with DSA"),
):
    PRESETS.register(_p.name)(_p)
