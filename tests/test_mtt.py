"""Expert trajectories and trajectory matching on tiny data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gendistill.data import load_dataset
from gendistill.errors import UserError
from gendistill.experts import ExpertSpec, Trajectories, flatten, train_experts, unflatten
from gendistill.methods import distill
from gendistill.models import create_model

NET = "convnet[width=8]"


@pytest.fixture
def tiny(fmnist_dir: Path):  # noqa: ANN201
    return load_dataset("fashion-mnist", data_dir=fmnist_dir, val_fraction=0.1)


@pytest.fixture
def experts(tiny, tmp_path: Path) -> Path:  # noqa: ANN001
    return train_experts(tiny, tmp_path / "experts", 2, ExpertSpec(tiny.name, NET, epochs=3), progress=False)


def test_trajectories_are_saved_every_epoch_and_resume(experts: Path, tiny) -> None:  # noqa: ANN001
    t = Trajectories(experts)
    assert len(t) == 2 and t.epochs == 3
    assert not torch.equal(t.params(0, 0), t.params(0, 3)) and not torch.equal(t.params(0, 0), t.params(1, 0))
    stamp = (experts / "expert_000.safetensors").stat().st_mtime_ns
    train_experts(tiny, experts, 3, ExpertSpec(tiny.name, NET, epochs=3), progress=False)
    assert (experts / "expert_000.safetensors").stat().st_mtime_ns == stamp and len(Trajectories(experts)) == 3
    with pytest.raises(UserError, match="another recipe"):
        train_experts(tiny, experts, 1, ExpertSpec(tiny.name, NET, epochs=4), progress=False)


def test_flat_parameters_round_trip_in_the_students_order() -> None:
    net = create_model(NET, 1, 10, 28)
    from gendistill.experts import param_layout

    views = unflatten(flatten(net), param_layout(net))
    assert list(views) == [n for n, _ in net.named_parameters()]
    assert all(torch.equal(views[n], p) for n, p in net.named_parameters())


def test_mtt_distills_and_stores_the_learned_lr(tiny, experts: Path, tmp_path: Path) -> None:  # noqa: ANN001
    opts = {"experts": str(experts), "syn_steps": 3, "expert_epochs": 1, "max_start_epoch": 2, "lr_lr": 1e-6}
    s = distill(tiny, "mtt", 1, tmp_path / "m", iterations=5, lr=10.0, model=NET, progress=False,
                objective_options=opts)  # fmt: skip
    assert s.lr is not None and float(s.lr) != pytest.approx(0.01)  # it learned
    losses = s.meta["history"]["loss"]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert s.meta["eval_augment"] == "dsa" and s.meta["config"]["objective"]["syn_steps"] == 3


def test_student_must_match_the_experts(tiny, experts: Path, tmp_path: Path) -> None:  # noqa: ANN001
    opts = {"experts": str(experts), "syn_steps": 1, "expert_epochs": 1, "max_start_epoch": 1}
    with pytest.raises(UserError, match="differ from the experts"):
        distill(tiny, "mtt", 1, tmp_path / "m", iterations=1, model="convnet[width=4]", progress=False,
                objective_options=opts)  # fmt: skip
    with pytest.raises(UserError, match="exceeds"):
        distill(tiny, "mtt", 1, tmp_path / "m", iterations=1, model=NET, progress=False,
                objective_options={**opts, "max_start_epoch": 3})  # fmt: skip
    with pytest.raises(UserError, match="--experts"):
        distill(tiny, "mtt", 1, tmp_path / "m", iterations=1, model=NET, progress=False)
