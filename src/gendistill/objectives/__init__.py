"""Matching objectives behind one registry: what must match between real and synthetic data."""

from __future__ import annotations

from collections.abc import Callable

from gendistill.objectives.base import MatchContext, Objective
from gendistill.objectives.dc import GradientMatching
from gendistill.objectives.dm import DistributionMatching
from gendistill.objectives.mtt import TrajectoryMatching
from gendistill.registry import Registry

__all__ = ["OBJECTIVES", "MatchContext", "Objective"]

OBJECTIVES: Registry[Callable[..., Objective]] = Registry("objective")
OBJECTIVES.register("dc")(GradientMatching)
OBJECTIVES.register("dm")(DistributionMatching)
OBJECTIVES.register("mtt")(TrajectoryMatching)
