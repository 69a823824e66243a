"""Resumable state of a long run (a distillation, a prior's training): tensors + progress, as one folder.

A checkpoint records the config of the run that wrote it; :func:`check_same_run` refuses to resume it
under other settings (a resume with another ``--ipc`` would otherwise fail on mismatched tensor sizes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from gendistill.errors import UserError, an
from gendistill.store import open_folder, write_folder

CLASS_NAME = "Checkpoint"
STATE = "state"  # state.safetensors


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Replace the checkpoint folder in one rename, so a kill mid-write leaves the previous one whole."""
    write_folder(path, CLASS_NAME, info, {STATE: tensors}, force=True)


def nothing_to_resume(partial: Path) -> UserError:
    """``--resume`` without a partial run: say so, and when the run already finished, that it is complete."""
    out = partial.with_name(partial.name.removesuffix(".partial"))
    if out != partial and out.exists():
        return UserError(f"{out} is complete: nothing to resume; use it as it is, or pass --force to run it again")
    return UserError(f"nothing to resume in {partial}; run without --resume to start afresh")


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not path.is_dir():
        raise nothing_to_resume(path)
    try:
        stored = open_folder(path, "checkpoint")
        if stored.class_name != CLASS_NAME:
            raise UserError(f"{path} holds {an(stored.class_name)}, not a checkpoint")
        return stored.tensors(STATE), stored.settings()
    except UserError as e:
        raise UserError(f"{e}; delete {path} and start afresh") from None


def check_same_run(info: dict, config: dict, path: Path) -> None:
    """Refuse to resume a checkpoint written under other settings, naming the keys that differ."""
    saved = info.get("run_config")
    if saved is None:  # written before checkpoints recorded their run
        return
    differ = sorted(_diff(saved, _plain(config)))
    if differ:
        shown = ", ".join(f"{k} ({_at(saved, k)!r} -> {_at(_plain(config), k)!r})" for k in differ[:4])
        raise UserError(
            f"the checkpoint in {path} was written with other settings: {shown}; resume with the "
            "original settings, or drop --resume and pass --force to start over"
        )


def _plain(obj: object) -> object:
    """The JSON form of a config (tuples as lists), so a saved and a fresh config compare equal."""
    import json

    return json.loads(json.dumps(obj))


def _diff(a: object, b: object, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            out |= _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def _at(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


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


def restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict, prefix: str = "optim"
) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in info["plain"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Restore an optimiser whose state is all tensors (SGD's momentum, Adam's moments and step) from the
    ``prefix.*`` entries of ``tensors``, keeping its current hyperparameters."""
    restore_optimizer(opt, tensors, {"plain": {}, "param_groups": opt.state_dict()["param_groups"]}, prefix)


def check_partial(partial: Path, resume: bool, force: bool) -> None:
    """The resume rules of every long command: a partial run needs --resume or --force; --force alone
    removes it (before any work, so nothing half-written is left behind)."""
    if partial.exists() and not (resume or force):
        raise UserError(f"a partial run is in {partial}; pass --resume to continue it or --force to start over")
    if resume and not partial.exists():
        raise nothing_to_resume(partial)
    if force and not resume:
        shutil.rmtree(partial, ignore_errors=True)
