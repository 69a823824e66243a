from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gendistill.data import DATASETS, load_dataset, locate, search_paths
from gendistill.data.container import stratified_split
from gendistill.errors import UserError


@pytest.mark.parametrize("gz", [True, False])
def test_idx_loads_gzipped_or_not(tmp_path: Path, gz: bool, make_idx) -> None:
    root = make_idx(tmp_path / "d", gz=gz)
    d = load_dataset("fashion-mnist", data_dir=root, val_fraction=0.1)
    assert d.image_shape == (1, 28, 28)
    assert d.num_classes == 10 and d.classes[0] == "T-shirt/top"
    assert len(d.train_labels) + len(d.val_labels) == 200 and len(d.test_labels) == 100
    assert d.class_counts("val") == [2] * 10  # stratified
    # normalised with the field's constants: mean 0.2861, std 0.3530
    raw_first = (d.train_images[0] * 0.3530 + 0.2861) * 255
    assert raw_first.min() >= -0.5 and raw_first.max() <= 255.5


def test_lookup_order_env_then_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_idx) -> None:
    env_root = make_idx(tmp_path / "env" / "mnist")
    monkeypatch.setenv("GENDISTILL_DATA", str(tmp_path / "env"))
    assert locate("mnist") == env_root
    explicit = make_idx(tmp_path / "explicit")
    assert locate("mnist", explicit) == explicit
    assert search_paths("mnist")[-1] == Path.home() / ".cache" / "gendistill" / "mnist"


def test_missing_dataset_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    msg = str(e.value)
    assert "does not exist" in msg and str(tmp_path / "nowhere") in msg and "--data-dir" in msg and "\n" not in msg


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(UserError, match="fashion-mnist"):
        load_dataset("imagenet-1k")


def test_truncated_idx_is_a_user_error(tmp_path: Path, make_idx) -> None:
    root = make_idx(tmp_path / "d", gz=False)
    f = root / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated"):
        load_dataset("mnist", data_dir=root)


def test_validation_split_is_seeded_and_disjoint() -> None:
    labels = np.repeat(np.arange(5), 40)
    keep_a, held_a = stratified_split(labels, 0.25, seed=3)
    keep_b, held_b = stratified_split(labels, 0.25, seed=3)
    assert (held_a == held_b).all() and not set(keep_a) & set(held_a)
    assert len(keep_a) + len(held_a) == 200 and np.bincount(labels[held_a]).tolist() == [10] * 5
    assert not (stratified_split(labels, 0.25, seed=4)[1] == held_a).all()


def _cifar_batch(path: Path, n: int, label_key: str, seed: int, toy_images) -> None:
    x, y = toy_images(n, 10, 32, 3, seed)
    with open(path, "wb") as f:
        batch = {b"data": x.reshape(len(x), -1), label_key.encode(): y.tolist(), b"batch_label": b"x"}
        pickle.dump(batch, f, protocol=2)


def test_cifar10_python_batches(tmp_path: Path, toy_images) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        _cifar_batch(root / f"data_batch_{i}", 2, "labels", i, toy_images)
    _cifar_batch(root / "test_batch", 3, "labels", 9, toy_images)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f, protocol=2)
    d = load_dataset("cifar10", data_dir=tmp_path, val_fraction=0.1)
    assert d.image_shape == (3, 32, 32) and d.classes[3] == "c3"
    assert len(d.train_labels) + len(d.val_labels) == 100 and len(d.test_labels) == 30


def test_cifar100_fine_labels(tmp_path: Path, toy_images) -> None:
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    _cifar_batch(root / "train", 3, "fine_labels", 0, toy_images)
    _cifar_batch(root / "test", 1, "fine_labels", 1, toy_images)
    d = load_dataset("cifar100", data_dir=root, val_fraction=0.0)
    assert len(d.test_labels) == 10 and d.image_shape == (3, 32, 32)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_cifar_pickle_cannot_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in ["data_batch_1", "test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({b"data": _Exploit(), b"labels": [0]}, f)
    with pytest.raises(UserError, match="not allowed"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_svhn_mat_files(tmp_path: Path, toy_images) -> None:
    from scipy.io import savemat

    for split, n in (("train", 4), ("test", 2)):
        x, y = toy_images(n, 10, 32, 3, 0)
        y = y.astype(np.int64)
        y[y == 0] = 10  # SVHN's label for the digit 0
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": y.reshape(-1, 1)})
    d = load_dataset("svhn", data_dir=tmp_path, val_fraction=0.25)
    assert d.image_shape == (3, 32, 32) and set(d.test_labels.tolist()) == set(range(10))


def _folder(root: Path, classes: list[str], n: int, size: int = 20, mode: str = "RGB") -> None:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 255, (size, size, 3) if mode == "RGB" else (size, size), dtype=np.uint8)
            Image.fromarray(arr, mode).save(root / c / f"{i}.png")


def test_imagefolder_split_ratio_and_resize(tmp_path: Path) -> None:
    _folder(tmp_path / "imgs", ["cat", "dog", "emu"], 10)
    d = load_dataset("imagefolder", data_dir=tmp_path / "imgs", val_fraction=0.0, image_size=16)
    assert d.classes == ["cat", "dog", "emu"] and d.image_shape == (3, 16, 16)
    assert len(d.test_labels) == 6 and len(d.train_labels) == 24


def test_imagefolder_train_test_subfolders_grayscale(tmp_path: Path) -> None:
    _folder(tmp_path / "t" / "train", ["a", "b"], 6, mode="L")
    _folder(tmp_path / "t" / "test", ["a", "b"], 2, mode="L")
    d = load_dataset("imagefolder", data_dir=tmp_path / "t", val_fraction=0.0)
    assert d.image_shape == (1, 32, 32) and len(d.test_labels) == 4


def test_imagefolder_needs_data_dir() -> None:
    with pytest.raises(UserError, match="--data-dir"):
        load_dataset("imagefolder")


def test_registry_lists_every_format() -> None:
    assert set(DATASETS.names()) >= {"fashion-mnist", "mnist", "cifar10", "cifar100", "svhn", "imagefolder"}


def test_a_dataset_needs_two_classes(tmp_path: Path, toy_images) -> None:
    """A one-class folder would "evaluate" at 100% without learning anything: refused when loaded."""
    from PIL import Image

    x, _ = toy_images(3, 1, 16, 1, 0)
    (tmp_path / "only").mkdir()
    for i, img in enumerate(x):
        Image.fromarray(img[0]).save(tmp_path / "only" / f"{i}.png")
    with pytest.raises(UserError, match="at least two"):
        load_dataset("imagefolder", data_dir=tmp_path)


def test_fingerprint_tells_same_shaped_datasets_apart(tmp_path: Path, make_idx) -> None:
    a = load_dataset("fashion-mnist", data_dir=make_idx(tmp_path / "a"))
    again = load_dataset("fashion-mnist", data_dir=tmp_path / "a", val_fraction=0.3, seed=9)
    other = load_dataset("fashion-mnist", data_dir=make_idx(tmp_path / "b", n_test=11))
    assert a.fingerprint() == again.fingerprint()  # the validation split does not change it
    assert a.fingerprint() != other.fingerprint()
    assert a.identity() == {"name": "fashion-mnist", "source": str(tmp_path / "a"), "fingerprint": a.fingerprint()}
