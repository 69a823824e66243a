"""MNIST-style IDX files (gzipped or not): MNIST and Fashion-MNIST."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from gendistill.data.container import RawSplits
from gendistill.errors import UserError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    return None


def has_idx(root: Path, prefixes: tuple[str, ...] = ("train", "t10k")) -> bool:
    return all(_find(root, f"{p}-{kind}") for p in prefixes for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))


def read_idx(path: Path) -> np.ndarray:
    try:
        data = bytearray(path.read_bytes())  # writable, so torch can share it without a copy or a warning
        if path.suffix == ".gz":
            # one-shot zlib is ~2x faster than gzip.open's chunked reads; bytearray keeps it writable for torch
            data = bytearray(zlib.decompress(data, wbits=31))
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"cannot read IDX file {path}: {e}; re-download it") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number); re-download it")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise UserError(f"{path} is truncated or corrupted ({len(data) - header} of {expected} bytes); re-download it")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def read_idx_splits(root: Path, classes: list[str]) -> RawSplits:
    def pair(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))  # type: ignore[arg-type]
        labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))  # type: ignore[arg-type]
        if images.ndim != 3 or len(images) != len(labels):
            raise UserError(
                f"IDX files for {prefix!r} in {root} do not match (images {images.shape}, labels {labels.shape})"
            )
        return images[:, None, :, :], labels.astype(np.int64)

    train_x, train_y = pair("train")
    test_x, test_y = pair("t10k")
    return RawSplits(train_x, train_y, test_x, test_y, classes)
