"""Any ``root/<class>/*.png|jpg`` tree, with ``train/`` and ``test/`` subfolders or a seeded split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gendistill.data.container import RawSplits, stratified_split
from gendistill.errors import UserError
from gendistill.runtime import check_memory
from gendistill.validate import MAX_IMAGE_SIZE, Limit, check_value

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_of(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def has_folder(root: Path) -> bool:
    return root.is_dir() and any(_images_of(d) for d in _class_dirs(root))


def _load(paths: list[Path], size: int, mode: str) -> np.ndarray:
    out = np.empty((len(paths), size, size, 3 if mode == "RGB" else 1), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                out[i] = np.asarray(im).reshape(size, size, -1)
        except (UnidentifiedImageError, OSError) as e:
            raise _unreadable(p, e) from None
    return out.transpose(0, 3, 1, 2)


def _scan(root: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    paths, labels = [], []
    for c, name in enumerate(classes):
        files = _images_of(root / name) if (root / name).is_dir() else []
        paths += files
        labels += [c] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def _unreadable(p: Path, e: Exception) -> UserError:
    return UserError(f"cannot read image {p} ({e}); remove or replace it")


def _mode(paths: list[Path]) -> str:
    """Grayscale when every sampled image is; else RGB."""
    for p in paths[:: max(1, len(paths) // 50)]:
        try:
            with Image.open(p) as im:
                if im.mode not in ("L", "1", "I;16", "I"):
                    return "RGB"
        except (UnidentifiedImageError, OSError) as e:
            raise _unreadable(p, e) from None
    return "L"


def _check_size(image_size: int, count: int, mode: str) -> None:
    """A size the loader can hold: positive, bounded, and (decoded, then normalised to float32) in memory."""
    check_value("--image-size", image_size, int, Limit(ge=2, le=MAX_IMAGE_SIZE))
    per_image = image_size * image_size * (3 if mode == "RGB" else 1) * (1 + 4)  # uint8 decoded + float32
    check_memory(count * per_image, f"{count:,} images at {image_size} px", "choose a smaller --image-size")


def read_folder(root: Path, image_size: int = 32, test_fraction: float = 0.2, seed: int = 0) -> RawSplits:
    split_dirs = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if split_dirs else root
    classes = [d.name for d in _class_dirs(train_root)]
    if not classes:
        raise UserError(f"no class folders in {train_root}; expected {train_root}/<class>/*.png")
    paths, labels = _scan(train_root, classes)
    if not paths:
        raise UserError(f"no images (.png/.jpg) under {train_root}/<class>/")
    mode = _mode(paths)
    if split_dirs:
        test_paths, test_labels = _scan(root / "test", classes)
        if not test_paths:
            raise UserError(f"no images under {root / 'test'}/<class>/ (class names must match train/)")
        _check_size(image_size, len(paths) + len(test_paths), mode)
        return RawSplits(
            _load(paths, image_size, mode), labels, _load(test_paths, image_size, mode), test_labels, classes
        )
    _check_size(image_size, len(paths), mode)
    keep, held = stratified_split(labels, test_fraction, seed)
    images = _load(paths, image_size, mode)
    return RawSplits(images[keep], labels[keep], images[held], labels[held], classes)
