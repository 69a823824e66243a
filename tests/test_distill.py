"""The engine, the objectives and the method layer on tiny data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gendistill import load
from gendistill.augment import DSA
from gendistill.data import load_dataset
from gendistill.distill import Schedule, run
from gendistill.errors import UserError
from gendistill.methods import distill
from gendistill.objectives import OBJECTIVES, MatchContext
from gendistill.objectives.dc import default_loops, gradient_distance
from gendistill.params import Pixels

NET = "convnet[width=16]"


@pytest.fixture
def tiny(fmnist_dir: Path):  # noqa: ANN201
    return load_dataset("fashion-mnist", data_dir=fmnist_dir, val_fraction=0.1)


def _setup(tiny, objective: str, augment: bool = True, classes=None):  # noqa: ANN001, ANN202
    params = Pixels.create(tiny, 2, "real", torch.Generator().manual_seed(0))
    ctx = MatchContext(tiny, NET, DSA() if augment else None, seed=3, real_batch=8, classes=classes)
    return (
        params,
        OBJECTIVES.get(objective)(ipc=2, **({"outer_loop": 2, "inner_loop": 1} if objective == "dc" else {})),
        ctx,
    )


@pytest.mark.parametrize("objective", ["dm", "dc"])
def test_objective_loss_decreases(tiny, objective: str) -> None:  # noqa: ANN001
    params, obj, ctx = _setup(tiny, objective, augment=False)
    schedule = Schedule(iterations=12, lr=0.5 if objective == "dm" else 0.1)
    hist = run(params, obj, ctx, schedule, progress=False)
    assert len(hist.losses) == 12 and all(torch.isfinite(torch.tensor(hist.losses)))
    first, last = sum(hist.losses[:3]), sum(hist.losses[-3:])
    assert last < first


def test_dm_batched_forward_equals_per_class(tiny) -> None:  # noqa: ANN001
    """All classes in one pass gives the per-class reference loss (instance norm keeps samples independent)."""
    params, obj, ctx = _setup(tiny, "dm")
    loss = next(obj.losses(params, ctx, 5))
    net = ctx.fresh_model(5)
    ref = 0.0
    for c in range(10):
        g = ctx.rng(5, c)
        real, syn = ctx.real_batch_of(c, g), params.images[params.labels == c]
        real, syn = ctx.augment.siamese(real, syn, generator=g)
        with torch.no_grad():
            ref += float(((net.embed(real).mean(0) - net.embed(syn).mean(0)) ** 2).sum())
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-4)


def test_gradient_distance_is_dc_layerwise_cosine() -> None:
    a = [torch.ones(4, 3, 3, 3), torch.ones(4)]
    assert float(gradient_distance(a, a)) == pytest.approx(0.0, abs=1e-5)
    assert float(gradient_distance(a, [-t for t in a])) == pytest.approx(8.0, abs=1e-4)  # 4 channels x (1 - -1)
    assert default_loops(1) == (1, 1) and default_loops(10) == (10, 50) and default_loops(50) == (50, 10)


def test_resume_gives_the_same_tensors(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    kw = dict(iterations=6, lr=1.0, real_batch=8, model=NET, seed=1, progress=False, checkpoint_every=2)
    full = distill(tiny, "dm", 2, tmp_path / "full", **kw)
    # interrupted: run 4 of 6 iterations (checkpoint at 4), then resume to the end
    with pytest.raises(KeyboardInterrupt):
        _interrupted(tiny, tmp_path / "part", kw, stop_after=4)
    assert (tmp_path / "part.partial").is_dir() and not (tmp_path / "part").exists()
    resumed = distill(tiny, "dm", 2, tmp_path / "part", resume=True, **kw)
    assert torch.equal(full.images, resumed.images)
    assert full.meta["history"]["loss"] == resumed.meta["history"]["loss"]
    assert not (tmp_path / "part.partial").exists()
    assert torch.equal(load(tmp_path / "part").images, full.images)


def _interrupted(tiny, out: Path, kw: dict, stop_after: int, method: str = "dm") -> None:  # noqa: ANN001
    """Run ``distill`` but kill it (KeyboardInterrupt) right after the checkpoint at ``stop_after``."""
    import gendistill.distill.engine as engine

    real_save = engine._save

    def save_then_maybe_stop(path, params, objective, opt, iteration, *rest):  # noqa: ANN001, ANN202
        real_save(path, params, objective, opt, iteration, *rest)
        if iteration >= stop_after:
            raise KeyboardInterrupt

    engine._save = save_then_maybe_stop
    try:
        distill(tiny, method, 2, out, **kw)
    finally:
        engine._save = real_save


def test_dsa_and_dc_methods_write_artifacts(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    opts = {"outer_loop": 2, "inner_loop": 1}
    s = distill(tiny, "dsa", 1, tmp_path / "dsa", iterations=2, model=NET, real_batch=8, progress=False,
                objective_options=opts)  # fmt: skip
    assert s.meta["eval_augment"] == "dsa" and s.meta["config"]["objective"]["outer_loop"] == 2
    assert (tmp_path / "dsa" / "grid.png").is_file() and len(load(tmp_path / "dsa")) == 10


def test_distill_refuses_bad_input(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(UserError, match="unknown method"):
        distill(tiny, "kip", 1, tmp_path / "x")
    with pytest.raises(UserError, match="ipc"):
        distill(tiny, "dm", 0, tmp_path / "x", iterations=1)
    with pytest.raises(UserError, match="no checkpoint"):
        distill(tiny, "dm", 1, tmp_path / "x", iterations=1, resume=True)


def test_torchrun_two_processes_equal_one(fmnist_dir: Path, tmp_path: Path) -> None:
    """DM sharded over classes by torchrun (gloo) writes the artifact a single process writes."""
    import os
    import subprocess
    import sys

    common = ["distill", "--method", "dm", "--ipc", "2", "--iterations", "3", "--real-batch", "8", "--model", NET,
              "--data-dir", str(fmnist_dir), "--quiet", "--seed", "4"]  # fmt: skip
    one = subprocess.run([sys.executable, "-m", "gendistill.cli.main", *common, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two ranks share the two cores
    two = subprocess.run([*launch, "-m", "gendistill.cli.main", *common, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = load(tmp_path / "one"), load(tmp_path / "two")
    assert b.meta["world_size"] == 2 and a.meta["world_size"] == 1
    assert torch.allclose(a.images, b.images, atol=1e-5)
    assert a.meta["history"]["loss"] == pytest.approx(b.meta["history"]["loss"], rel=1e-5)
