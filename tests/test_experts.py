"""Expert trajectories for MTT: saved every epoch, resumable, in the store's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gendistill.errors import UserError
from gendistill.experts import ExpertSpec, Trajectories, flatten, param_layout, train_experts, unflatten
from gendistill.models import create_model

NET = "convnet[width=8]"


@pytest.fixture
def experts(tiny, tmp_path: Path) -> Path:
    return train_experts(tiny, tmp_path / "experts", 2, ExpertSpec(tiny.name, NET, epochs=3), progress=False)


def test_trajectories_are_saved_every_epoch_and_resume(experts: Path, tiny) -> None:
    t = Trajectories(experts)
    assert len(t) == 2 and t.epochs == 3
    assert json.loads((experts / "config.json").read_text())["_class_name"] == "Trajectories"
    assert not torch.equal(t.params(0, 0), t.params(0, 3)) and not torch.equal(t.params(0, 0), t.params(1, 0))
    stamp = (experts / "expert_000.safetensors").stat().st_mtime_ns
    train_experts(tiny, experts, 3, ExpertSpec(tiny.name, NET, epochs=3), progress=False)
    assert (experts / "expert_000.safetensors").stat().st_mtime_ns == stamp and len(Trajectories(experts)) == 3
    with pytest.raises(UserError, match="another recipe"):
        train_experts(tiny, experts, 1, ExpertSpec(tiny.name, NET, epochs=4), progress=False)


def test_format_1_trajectories_still_read(experts: Path) -> None:
    """Folders written before the store kept their index in experts.json without the reserved keys."""
    config = json.loads((experts / "config.json").read_text())
    (experts / "config.json").rename(experts / "experts.json")
    (experts / "experts.json").write_text(json.dumps({k: v for k, v in config.items() if not k.startswith("_")}))
    assert len(Trajectories(experts)) == 2


def test_a_truncated_expert_is_one_line(experts: Path) -> None:
    f = experts / "expert_001.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(UserError, match="truncated or corrupted"):
        Trajectories(experts).params(1, 0)


def test_flat_parameters_round_trip_in_the_students_order() -> None:
    net = create_model(NET, 1, 10, 28)
    views = unflatten(flatten(net), param_layout(net))
    assert list(views) == [n for n, _ in net.named_parameters()]
    assert all(torch.equal(views[n], p) for n, p in net.named_parameters())
