"""Parameterisations: where the synthetic data lives."""

from gendistill.params.base import Parameterisation
from gendistill.params.pixels import Pixels

__all__ = ["Parameterisation", "Pixels"]
