"""Small datasets written by the tests themselves, in every format the loaders read."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gendistill.io import partial_dir


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def class_images(n_per_class: int, classes: int, size: int, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images: class k is a bright horizontal band at a class-specific height, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    images = rng.integers(0, 60, size=(len(labels), channels, size, size))
    band = max(1, size // classes)
    for i, k in enumerate(labels):
        images[i, :, k * band : (k + 1) * band, :] = 220
    perm = rng.permutation(len(labels))
    return images[perm].astype(np.uint8), labels[perm].astype(np.uint8)


def make_idx_dataset(root: Path, n_train: int = 20, n_test: int = 10, classes: int = 10, gz: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = class_images(n, classes, 28, 1, seed)
        write_idx(root / f"{prefix}-images-idx3-ubyte", x[:, 0], gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", y, gz)
    return root


@pytest.fixture
def fmnist_dir(tmp_path: Path) -> Path:
    """A tiny Fashion-MNIST look-alike: 20 train and 10 test images per class, gzipped IDX."""
    return make_idx_dataset(tmp_path / "fashion-mnist")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the machine's datasets or caches unless they ask; few threads keep CI predictable."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENDISTILL_DATA", raising=False)
    monkeypatch.delenv("GENDISTILL_CACHE", raising=False)
    torch.set_num_threads(2)


NET = "convnet[width=16]"  # a narrow ConvNet-3: every test that trains one stays fast


@pytest.fixture
def net() -> str:
    return NET


@pytest.fixture
def make_idx():
    """``make_idx(root, n_train=20, n_test=10, classes=10, gz=True)``: write a tiny IDX dataset at root."""
    return make_idx_dataset


@pytest.fixture
def toy_images():
    """``toy_images(n_per_class, classes, size, channels, seed)``: learnable uint8 images and labels."""
    return class_images


@pytest.fixture
def tiny(fmnist_dir: Path):
    """The tiny Fashion-MNIST look-alike loaded, with a 10% validation split."""
    from gendistill.data import load_dataset

    return load_dataset("fashion-mnist", data_dir=fmnist_dir, val_fraction=0.1)


def kill_after(iteration: int):
    """An ``on_iteration`` callback that kills the run (KeyboardInterrupt) once ``iteration`` is done and
    checkpointed: it fires at the start of the next iteration's callback, as a kill between them would."""

    def callback(done: int, params, history) -> None:
        if done > iteration:
            raise KeyboardInterrupt

    return callback


@pytest.fixture
def killer():
    return kill_after


def make_tiny_prior(seed: int = 0, size: int = 28, channels: int = 1):
    """A randomly initialised StyleGAN small enough to render and train in a test."""
    from gendistill.priors import StyleGAN, StyleGANConfig

    torch.manual_seed(seed)
    cfg = StyleGANConfig(10, size, channels, z_dim=8, w_dim=16, mapping_layers=2, channel_base=64, channel_max=8)
    return StyleGAN(cfg).eval().requires_grad_(False)


@pytest.fixture
def tiny_prior():
    """``tiny_prior(seed=0, size=28, channels=1)``: a fresh tiny StyleGAN."""
    return make_tiny_prior


@pytest.fixture
def saved_prior(tmp_path: Path) -> Path:
    return make_tiny_prior().save_pretrained(tmp_path / "prior")


# torchrun's report of the failed rank that came first, e.g. "Root Cause ... exitcode  : -6 (pid: 30244)"
_ROOT_CAUSE_SIGNAL = re.compile(r"Root Cause.*?exitcode\s*:\s*-(\d+)", re.S)
_LAUNCHER_REPORT = re.compile(r"^.*elastic/multiprocessing/api\.py.*failed \(exitcode", re.M)


def ranks_output(stderr: str, chars: int = 4000) -> str:
    """What the ranks printed before torchrun's own report (which is long and names no cause)."""
    return _LAUNCHER_REPORT.split(stderr, maxsplit=1)[0][-chars:]


def run_cli(procs: int, *args: object) -> subprocess.CompletedProcess:
    """The CLI in ``procs`` processes (torchrun over gloo when more than one, one thread each: the ranks
    share the two cores), asserted to succeed with the ranks' own output as the message.

    A rank killed by a signal (not a Python error) is rerun once, with a warning that carries its output:
    CI once saw a rank of a test that had passed in every earlier CI run die by SIGABRT (the message was
    cut off), and 53 runs of it here never reproduced it: the rerun keeps such a crash from failing the
    suite, the warning keeps it visible, and a second crash still fails the test."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    argv = [str(a) for a in args]
    cmd = [sys.executable, *launcher, "-m", "gendistill.cli.main", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    signal = _ROOT_CAUSE_SIGNAL.search(done.stderr) if procs > 1 and done.returncode else None
    if signal:
        warnings.warn(
            f"a rank died by signal {signal.group(1)}; rerunning once. It printed:\n{ranks_output(done.stderr)}",
            stacklevel=2,
        )
        out = Path(argv[argv.index("--out") + 1])
        for leftover in (out, partial_dir(out)):  # what the dead run may have left
            shutil.rmtree(leftover, ignore_errors=True)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, ranks_output(done.stderr)
    return done


@pytest.fixture
def cli_procs():
    """``cli_procs(procs, *args)``: run the CLI in that many processes and assert that it succeeded."""
    return run_cli
