"""Normalisation layers by name, as the field's networks use them."""

from __future__ import annotations

from torch import nn

from gendistill.errors import did_you_mean

NORMS = ("instance", "batch", "layer", "group", "none")


def make_norm(kind: str, channels: int, spatial: tuple[int, int] | None = None) -> nn.Module:
    """``instance`` is GroupNorm with one group per channel and an affine transform, as in DC/DSA/DM.

    GroupNorm(C, C) is used rather than nn.InstanceNorm2d(affine=True): on CPU its fused kernel is faster
    in both passes (benchmarks/bench_norm.py), and its parameter names match the reference checkpoints.
    """
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        if spatial is None:
            raise ValueError("layer norm needs the spatial size")
        return nn.LayerNorm([channels, *spatial], elementwise_affine=True)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise did_you_mean("norm", kind, NORMS)


def make_activation(kind: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "leakyrelu": lambda: nn.LeakyReLU(0.01), "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
    if kind not in acts:
        raise did_you_mean("activation", kind, list(acts))
    return acts[kind]()


def make_pool(kind: str) -> nn.Module:
    pools = {"avg": lambda: nn.AvgPool2d(2, 2), "max": lambda: nn.MaxPool2d(2, 2), "none": nn.Identity}
    if kind not in pools:
        raise did_you_mean("pooling", kind, list(pools))
    return pools[kind]()
