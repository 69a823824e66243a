"""Sharding classes over processes (torchrun): each rank distils its own classes, rank 0 writes.

DM treats classes independently and every random draw is a function of (seed, iteration, class), so a
rank that owns a subset of classes makes exactly the updates the single-process run makes for them.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from gendistill.params import Parameterisation


def world() -> tuple[int, int]:
    """(rank, world size), starting the process group when launched by torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def owned_classes(num_classes: int, rank: int, size: int) -> list[int]:
    return list(range(num_classes))[rank::size]


@torch.no_grad()
def merge(params: Parameterisation, classes: list[int]) -> None:
    """Give every rank the full set: each image row comes from the rank that owns its class."""
    mine = params.class_mask(classes)
    for p in params.parameters():
        merge_rows(p, mine)


@torch.no_grad()
def merge_rows(tensor: torch.Tensor, mine: torch.Tensor) -> torch.Tensor:
    """In place: every rank ends with each row from the rank whose ``mine`` mask holds it (the others send
    zeros, and x + 0 is exact, so the merged tensor is bit-identical to the owner's rows)."""
    if not dist.is_initialized():
        return tensor
    tensor.mul_(mine.to(tensor.device).view(-1, *([1] * (tensor.ndim - 1))).to(tensor.dtype))
    dist.all_reduce(tensor)
    return tensor


@torch.no_grad()
def sum_gradients(params: Parameterisation) -> None:
    """Sum every parameter's gradient over ranks (one flat all-reduce; a missing gradient counts as zero,
    so every rank makes the same collective call)."""
    if not dist.is_initialized():
        return
    tensors = list(params.parameters())
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in tensors])
    dist.all_reduce(flat)
    for p, g in zip(tensors, flat.split([p.numel() for p in tensors])):
        p.grad = g.view_as(p).clone()


def sum_scalar(value: float, device: torch.device) -> float:
    """``value`` summed over every process (in float64, so the order of the sum barely matters)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t)


def max_scalar(value: float, device: torch.device) -> float:
    """The largest ``value`` over processes (the slowest rank's time is the run's wall time)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def sum_losses(losses: list[float], device: torch.device) -> list[float]:
    """The total loss per iteration is the sum of every rank's per-class losses."""
    t = torch.tensor(losses, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def finish() -> None:
    """Wait until rank 0 has written, then leave the process group."""
    dist.barrier()
    dist.destroy_process_group()
