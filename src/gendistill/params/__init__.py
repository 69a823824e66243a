"""Parameterisations: where the synthetic data lives. ``PARAMS`` names their builders for ``distill``."""

from collections.abc import Callable

from gendistill.params.base import Parameterisation
from gendistill.params.latent import GanLatents, LatentSpace
from gendistill.params.pixels import Pixels
from gendistill.registry import Registry

# name -> build(dataset, ipc, init, generator, space, device) -> Parameterisation
PARAMS: Registry[Callable[..., Parameterisation]] = Registry("parameterisation")
PARAMS.register("pixels")(Pixels.from_space)
PARAMS.register("glad")(GanLatents.from_space)
PARAMS.register("hglad")(GanLatents.from_space)

__all__ = ["PARAMS", "GanLatents", "LatentSpace", "Parameterisation", "Pixels"]
