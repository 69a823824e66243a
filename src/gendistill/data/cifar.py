"""CIFAR-10 / CIFAR-100 in the python pickle batches as distributed, read without running code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from gendistill.data.container import RawSplits
from gendistill.errors import UserError

# The only globals a genuine CIFAR batch refers to: numpy's array reconstruction, and _codecs.encode,
# which Python 3 pickles use for raw bytes. Anything else (os.system, builtins.eval, ...) is refused, so a
# crafted file cannot run code when it is read.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def safe_unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise UserError(f"{path} is not a valid CIFAR batch ({e}); re-download the python version") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a valid CIFAR batch (holds {type(obj).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    d = safe_unpickle(path)
    if "data" not in d or label_key not in d:
        raise UserError(f"{path} lacks 'data' or '{label_key}'; is it the python version of the batches?")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise UserError(f"{path} has an unexpected layout {data.shape}; re-download it")
    return data.reshape(-1, 3, 32, 32), labels


def _names(meta: Path, key: str, fallback: int) -> list[str]:
    if meta.is_file():
        names = safe_unpickle(meta).get(key)
        if isinstance(names, list):
            return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return [str(i) for i in range(fallback)]


CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"


def _root(root: Path, sub: str) -> Path:
    return root / sub if (root / sub).is_dir() else root


def has_cifar10(root: Path) -> bool:
    r = _root(root, CIFAR10_DIR)
    return (r / "data_batch_1").is_file() and (r / "test_batch").is_file()


def has_cifar100(root: Path) -> bool:
    r = _root(root, CIFAR100_DIR)
    return (r / "train").is_file() and (r / "test").is_file()


def read_cifar10(root: Path) -> RawSplits:
    r = _root(root, CIFAR10_DIR)
    parts = [_batch(r / f"data_batch_{i}", "labels") for i in range(1, 6) if (r / f"data_batch_{i}").is_file()]
    test_x, test_y = _batch(r / "test_batch", "labels")
    classes = _names(r / "batches.meta", "label_names", 10)
    return RawSplits(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), test_x, test_y, classes
    )


def read_cifar100(root: Path) -> RawSplits:
    r = _root(root, CIFAR100_DIR)
    train_x, train_y = _batch(r / "train", "fine_labels")
    test_x, test_y = _batch(r / "test", "fine_labels")
    return RawSplits(train_x, train_y, test_x, test_y, _names(r / "meta", "fine_label_names", 100))
