"""Datasets behind one registry, loaded into one in-memory form (:class:`ImageDataset`).

``load_dataset("fashion-mnist")`` looks for the files in, in order: ``data_dir`` (and
``data_dir/<name>``), ``$GENDISTILL_DATA`` (and ``$GENDISTILL_DATA/<name>``),
``/usr/share/datasets/<name>`` (Debian's dataset packages) and ``~/.cache/gendistill/<name>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gendistill.data.cifar import has_cifar10, has_cifar100, read_cifar10, read_cifar100
from gendistill.data.container import (
    ImageDataset,
    RawSplits,
    channel_stats,
    normalize_uint8,
    stratified_split,
)
from gendistill.data.folder import has_folder, read_folder
from gendistill.data.idx import has_idx, read_idx_splits
from gendistill.data.subsets import check_ipc, random_subset
from gendistill.data.svhn import has_svhn, read_svhn
from gendistill.errors import UserError
from gendistill.registry import Registry

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "ImageDataset",
    "check_ipc",
    "KNOWN_CLASS_NAMES",
    "class_names",
    "load_dataset",
    "locate",
    "random_subset",
    "search_paths",
]

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


KNOWN_CLASS_NAMES = {"fashion-mnist": FASHION_CLASSES, "mnist": [str(d) for d in range(10)]}


def class_names(dataset: str, num_classes: int) -> list[str]:
    """Names of a dataset's classes without reading it: the fixed ones where known, else ``class k``."""
    known = KNOWN_CLASS_NAMES.get(dataset, [])
    return known if len(known) == num_classes else [f"class {k}" for k in range(num_classes)]


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one dataset. ``mean``/``std`` are the field's fixed constants, if any."""

    name: str
    present: Callable[[Path], bool]
    read: Callable[..., RawSplits]
    hint: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    searchable: bool = True  # False: only an explicit --data-dir names its root
    options: tuple[str, ...] = field(default_factory=tuple)  # reader keyword arguments the CLI may pass


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _add(spec: DatasetSpec) -> None:
    DATASETS.register(spec.name)(spec)


_add(
    DatasetSpec(
        "fashion-mnist",
        has_idx,
        lambda root: read_idx_splits(root, FASHION_CLASSES),
        "install Debian's package dataset-fashion-mnist, or put train-/t10k-{images-idx3,labels-idx1}-ubyte(.gz) "
        "in a folder and pass --data-dir",
        (0.2861,),
        (0.3530,),
    )
)
_add(
    DatasetSpec(
        "mnist",
        has_idx,
        lambda root: read_idx_splits(root, [str(i) for i in range(10)]),
        "put train-/t10k-{images-idx3,labels-idx1}-ubyte(.gz) in a folder and pass --data-dir",
        (0.1307,),
        (0.3081,),
    )
)
_add(
    DatasetSpec(
        "cifar10",
        has_cifar10,
        read_cifar10,
        "extract cifar-10-python.tar.gz (the python version) and pass its folder as --data-dir",
        (0.4914, 0.4822, 0.4465),
        (0.2023, 0.1994, 0.2010),
    )
)
_add(
    DatasetSpec(
        "cifar100",
        has_cifar100,
        read_cifar100,
        "extract cifar-100-python.tar.gz (the python version) and pass its folder as --data-dir",
        (0.5071, 0.4866, 0.4409),
        (0.2673, 0.2564, 0.2762),
    )
)
_add(
    DatasetSpec(
        "svhn",
        has_svhn,
        read_svhn,
        "put train_32x32.mat and test_32x32.mat in a folder and pass --data-dir",
        (0.4377, 0.4438, 0.4728),
        (0.1980, 0.2010, 0.1970),
    )
)
_add(
    DatasetSpec(
        "imagefolder",
        has_folder,
        read_folder,
        "pass --data-dir ROOT where ROOT/<class>/*.png (or ROOT/train/<class>, ROOT/test/<class>)",
        searchable=False,
        options=("image_size", "test_fraction"),
    )
)


def search_paths(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders looked in for ``name``, in order."""
    paths: list[Path] = []
    if data_dir is not None:
        paths += [Path(data_dir), Path(data_dir) / name]
    if not DATASETS.get(name).searchable:
        return paths
    env = os.environ.get("GENDISTILL_DATA")
    if env:
        paths += [Path(env), Path(env) / name]
    paths += [Path("/usr/share/datasets") / name, Path.home() / ".cache" / "gendistill" / name]
    return paths


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    spec = DATASETS.get(name)
    return next((p for p in search_paths(name, data_dir) if p.is_dir() and spec.present(p)), None)


def load_dataset(
    name: str = "fashion-mnist",
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.05,
    seed: int = 0,
    **options,
) -> ImageDataset:
    """Load a registered dataset into memory, with a seeded stratified validation split."""
    spec = DATASETS.get(name)
    if not 0 <= val_fraction < 1:
        raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}")
    unknown = set(options) - set(spec.options)
    if unknown:
        raise UserError(
            f"dataset {name!r} takes no option(s) {sorted(unknown)}; it takes {list(spec.options) or 'none'}"
        )
    root = _in_data_dir(name, spec, Path(data_dir)) if data_dir is not None else locate(name)
    if root is None:
        looked = ", ".join(str(p) for p in search_paths(name, data_dir)) or "(nowhere: no --data-dir given)"
        raise UserError(f"dataset {name!r} not found (looked in {looked}); {spec.hint}")
    raw = spec.read(root, **options)
    dataset = _assemble(name, raw, spec, val_fraction, seed, str(root))
    dataset.loaded_with = {"dataset": name, "data_dir": str(root), "val_fraction": val_fraction, **options}
    return dataset


def _in_data_dir(name: str, spec: DatasetSpec, data_dir: Path) -> Path:
    """The dataset in the folder the user named, or one line saying why not: never another copy found
    elsewhere, which would train or evaluate on data they did not ask for."""
    if not data_dir.exists():
        raise UserError(f"--data-dir {data_dir} does not exist; pass the folder that holds the {name} files")
    if not data_dir.is_dir():
        raise UserError(f"--data-dir {data_dir} is a file, not a folder; pass the folder that holds it")
    root = next((p for p in (data_dir, data_dir / name) if p.is_dir() and spec.present(p)), None)
    if root is None:
        what = "is empty" if not any(data_dir.iterdir()) else f"holds no {name} files (nor does {data_dir / name})"
        raise UserError(f"--data-dir {data_dir} {what}; {spec.hint}")
    return root


def _assemble(
    name: str, raw: RawSplits, spec: DatasetSpec, val_fraction: float, seed: int, source: str
) -> ImageDataset:
    classes = raw.classes
    if len(classes) < 2:
        raise UserError(
            f"{name} in {source} has {len(classes)} class(es); distillation and its evaluation need at "
            "least two (a one-class set scores 100% without learning anything)"
        )
    for split, labels in (("train", raw.train_labels), ("test", raw.test_labels)):
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise UserError(f"{name}: {split} labels fall outside 0..{len(classes) - 1}; the files are damaged")
    mean, std = (spec.mean, spec.std) if spec.mean is not None else channel_stats(raw.train_images)
    std = tuple(max(s, 1e-6) for s in std)  # type: ignore[union-attr]
    keep, held = stratified_split(raw.train_labels, val_fraction, seed)
    as_tensor = lambda a: normalize_uint8(a, mean, std)  # noqa: E731
    import torch

    return ImageDataset(
        name=name,
        classes=list(classes),
        mean=tuple(float(m) for m in mean),  # type: ignore[union-attr]
        std=tuple(float(s) for s in std),
        train_images=as_tensor(raw.train_images[keep]),
        train_labels=torch.from_numpy(np.ascontiguousarray(raw.train_labels[keep])),
        val_images=as_tensor(raw.train_images[held]),
        val_labels=torch.from_numpy(np.ascontiguousarray(raw.train_labels[held])),
        test_images=as_tensor(raw.test_images),
        test_labels=torch.from_numpy(np.ascontiguousarray(raw.test_labels)),
        source=source,
    )
