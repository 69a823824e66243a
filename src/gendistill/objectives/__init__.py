"""Matching objectives behind one registry: what must match between real and synthetic data."""

from __future__ import annotations

from collections.abc import Callable

from gendistill.objectives.base import MatchContext, Objective, derived_seed
from gendistill.objectives.dc import GradientMatching
from gendistill.objectives.dm import DistributionMatching
from gendistill.registry import Registry

__all__ = ["OBJECTIVES", "MatchContext", "Objective", "derived_seed"]

OBJECTIVES: Registry[Callable[..., Objective]] = Registry("objective")
OBJECTIVES.register("dc")(GradientMatching)
OBJECTIVES.register("dm")(DistributionMatching)
