"""SVHN cropped digits, from train_32x32.mat and test_32x32.mat."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gendistill.data.container import RawSplits
from gendistill.errors import UserError


def has_svhn(root: Path) -> bool:
    return (root / "train_32x32.mat").is_file() and (root / "test_32x32.mat").is_file()


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat  # imported here: only SVHN users pay for it

    try:
        mat = loadmat(str(path))
        x, y = mat["X"], mat["y"]
    except Exception as e:  # scipy raises several unrelated types for damaged files
        raise UserError(f"cannot read SVHN file {path} ({e}); re-download it") from None
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.size:
        raise UserError(f"{path} has an unexpected layout X{x.shape} y{y.shape}; re-download it")
    labels = y.reshape(-1).astype(np.int64) % 10  # SVHN stores the digit 0 as label 10
    return np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1))).astype(np.uint8), labels


def read_svhn(root: Path) -> RawSplits:
    train_x, train_y = _read(root / "train_32x32.mat")
    test_x, test_y = _read(root / "test_32x32.mat")
    return RawSplits(train_x, train_y, test_x, test_y, [str(i) for i in range(10)])
