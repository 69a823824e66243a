"""The one on-disk format: config.json with a class tag + safetensors, atomic, and every failure one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gendistill.errors import UserError
from gendistill.store import CONFIG_FILE, FORMAT_VERSION, open_folder, write_folder
from gendistill.store.checkpoint import check_same_run, load_checkpoint, save_checkpoint


def test_write_and_open_round_trip(tmp_path: Path) -> None:
    t = {"a": torch.arange(6.0).view(2, 3), "b": torch.tensor([1, 2])}
    write_folder(tmp_path / "new" / "deeper" / "x", "Thing", {"size": 3}, {"weights": t})  # parents created
    stored = open_folder(tmp_path / "new" / "deeper" / "x")
    assert stored.class_name == "Thing" and stored.format_version == FORMAT_VERSION
    assert stored.settings() == {"size": 3} and set(stored.config) >= {"_class_name", "_gendistill_version"}
    back = stored.tensors("weights")
    assert all(torch.equal(back[k], t[k]) for k in t)
    with pytest.raises(UserError, match="already exists"):
        write_folder(tmp_path / "new" / "deeper" / "x", "Thing", {"size": 4}, {})
    assert open_folder(tmp_path / "new" / "deeper" / "x").settings() == {"size": 3}  # untouched
    assert not [p for p in (tmp_path / "new" / "deeper").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "corrupted"),
        ('"a string"', "not an object"),
        ("[1, 2]", "not an object"),
        ('{"hidden_size": 4}', "names no _class_name"),
        ('{"_class_name": "Thing", "_format_version": 3}', "newer gendistill"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / CONFIG_FILE).write_text(content)
    with pytest.raises(UserError, match=message):
        open_folder(tmp_path / "x")


def test_missing_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        open_folder(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        open_folder(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        open_folder(tmp_path / "empty")
    write_folder(tmp_path / "x", "Thing", {}, {"w": {"a": torch.ones(100)}})
    stored = open_folder(tmp_path / "x")
    with pytest.raises(UserError, match="other.safetensors is missing"):
        stored.tensors("other")
    f = tmp_path / "x" / "w.safetensors"
    f.write_bytes(f.read_bytes()[:60])
    with pytest.raises(UserError, match="truncated or corrupted"):
        stored.tensors("w")


def test_checkpoints_refuse_another_run_and_read_format_1(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ck", {"x": torch.ones(2)}, {"iteration": 3, "run_config": {"ipc": 2, "run": {"a": 1}}})
    tensors, info = load_checkpoint(tmp_path / "ck")
    assert info["iteration"] == 3 and torch.equal(tensors["x"], torch.ones(2))
    check_same_run(info, {"ipc": 2, "run": {"a": 1}}, tmp_path / "ck")
    with pytest.raises(UserError, match=r"ipc \(2 -> 5\), run.a \(1 -> 9\)"):
        check_same_run(info, {"ipc": 5, "run": {"a": 9}}, tmp_path / "ck")
    old = tmp_path / "old"  # format 1: state.json + state.safetensors
    old.mkdir()
    (old / "state.safetensors").write_bytes((tmp_path / "ck" / "state.safetensors").read_bytes())
    (old / "state.json").write_text(json.dumps({"iteration": 7}))
    assert load_checkpoint(old)[1] == {"iteration": 7}
    (old / "state.json").write_text("[]")
    with pytest.raises(UserError, match="not an object.*start afresh"):
        load_checkpoint(old)
