"""The in-memory form every dataset loader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class RawSplits:
    """What a format reader returns: uint8 images in NCHW, int64 labels, class names."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]


@dataclass
class ImageDataset:
    """A labeled image dataset held in memory as normalised float32 NCHW tensors.

    ``train`` excludes the validation images carved from the original training set, so nothing that
    selects a checkpoint or hyperparameter ever looks at the test split.
    """

    name: str
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str = ""
    # the load_dataset arguments that read it again (name, folder, validation share, reader options)
    loaded_with: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def channels(self) -> int:
        return self.image_shape[0]

    @property
    def image_size(self) -> int:
        return self.image_shape[1]

    def class_indices(self, split: str = "train") -> list[torch.Tensor]:
        """Indices of each class in a split, in class order."""
        labels = getattr(self, f"{split}_labels")
        return [torch.nonzero(labels == c, as_tuple=True)[0] for c in range(self.num_classes)]

    def class_counts(self, split: str = "train") -> list[int]:
        labels = getattr(self, f"{split}_labels")
        return torch.bincount(labels, minlength=self.num_classes).tolist()

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images -> [0, 1] pixel values."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images * std + mean).clamp(0, 1)

    def fingerprint(self) -> str:
        """A short content hash that tells datasets of the same shape apart (MNIST from Fashion-MNIST).

        It hashes the test split's labels and first 64 images, which neither the validation fraction nor
        the split seed changes, so every loading of the same files gives the same fingerprint.
        """
        import hashlib

        h = hashlib.sha256(self.test_labels.numpy().tobytes())
        h.update(self.test_images[:64].numpy().tobytes())
        h.update(",".join(self.classes).encode())
        return h.hexdigest()[:16]

    def identity(self) -> dict:
        """What an artifact records of the data it was made from."""
        return {"name": self.name, "source": self.source, "fingerprint": self.fingerprint()}

    def describe(self) -> dict:
        return {
            "name": self.name,
            "classes": self.num_classes,
            "image_shape": list(self.image_shape),
            "train": int(self.train_labels.numel()),
            "val": int(self.val_labels.numel()),
            "test": int(self.test_labels.numel()),
            "source": self.source,
        }


def normalize_uint8(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 NCHW -> normalised float32, in one pass over memory."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, -1, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)]).view(1, -1, 1, 1)
    return x.mul_(scale).sub_(shift)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units of a uint8 NCHW array (for formats with no fixed stats)."""
    x = images.astype(np.float64) / 255.0
    return tuple(x.mean(axis=(0, 2, 3)).tolist()), tuple(x.std(axis=(0, 2, 3)).tolist())


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split of indices into (keep, held_out), held_out ~ fraction of each class."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_held = int(round(len(idx) * fraction))
        if fraction > 0 and len(idx) > 1:
            n_held = min(max(n_held, 1), len(idx) - 1)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))
