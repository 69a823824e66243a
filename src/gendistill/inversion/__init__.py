"""Diffusion Inversion (Zhou, Sahak & Ba 2023): per-image conditionings learned under a frozen diffusion prior
(:mod:`~gendistill.inversion.invert`), and new training images sampled from them with noise, interpolation
and classifier-free guidance (:mod:`~gendistill.inversion.generate`)."""

from gendistill.inversion.generate import GenerateConfig, generate
from gendistill.inversion.invert import InversionConfig, Inverter, invert

__all__ = ["GenerateConfig", "InversionConfig", "Inverter", "generate", "invert"]
