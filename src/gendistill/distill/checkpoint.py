"""Resumable state of a distillation: parameterisation, optimiser and progress, as safetensors + JSON."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from gendistill.errors import UserError
from gendistill.io import atomic_dir, save_tensors, write_json

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Replace the checkpoint folder in one rename, so a kill mid-write leaves the previous one whole."""
    with atomic_dir(path, force=True) as tmp:
        save_tensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / STATE_TENSORS)
        write_json(tmp / STATE_JSON, info)


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not (path / STATE_JSON).is_file():
        raise UserError(f"no checkpoint to resume in {path}; run without --resume to start afresh")
    try:
        return load_file(str(path / STATE_TENSORS)), json.loads((path / STATE_JSON).read_text())
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise UserError(f"checkpoint in {path} is damaged ({e}); delete it and start afresh") from None


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str = "optim") -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state into tensors (safetensors, named ``prefix.*``) and plain values (JSON)."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                plain[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict,
                      prefix: str = "optim") -> None:  # fmt: skip
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in info["plain"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
