"""Parameterisations: where the synthetic data lives. ``PARAMS`` names them for ``distill``; each brings
its own frozen ``Config`` (``PARAMS.get("hglad").Config(select="crfd")``)."""

from gendistill.params.base import ParamConfig, Parameterisation, Stages
from gendistill.params.generator import GeneratorCodes, GeneratorConfig
from gendistill.params.latent import GanLatents, Glad, GladConfig, HGlad, HGladConfig, LatentConfig
from gendistill.params.pixels import Pixels, PixelsConfig
from gendistill.registry import Registry

PARAMS: Registry[type[Parameterisation]] = Registry("parameterisation")
PARAMS.register("pixels")(Pixels)
PARAMS.register("glad")(Glad)
PARAMS.register("hglad")(HGlad)
PARAMS.register("generator")(GeneratorCodes)


def config_name(config: ParamConfig) -> str:
    """The registered parameterisation whose ``Config`` ``config`` is."""
    return next(n for n in PARAMS.names() if type(config) is PARAMS.get(n).Config)


__all__ = [
    "PARAMS",
    "GanLatents",
    "GeneratorCodes",
    "GeneratorConfig",
    "Glad",
    "GladConfig",
    "HGlad",
    "HGladConfig",
    "LatentConfig",
    "ParamConfig",
    "Parameterisation",
    "Pixels",
    "PixelsConfig",
    "Stages",
    "config_name",
]
