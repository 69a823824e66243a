"""Matching objectives behind one registry: what must match between real and synthetic data."""

from __future__ import annotations

from gendistill.objectives.adversarial import AdversarialRealism
from gendistill.objectives.anchor import ClassAnchor
from gendistill.objectives.base import MatchContext, Objective, ObjectiveConfig
from gendistill.objectives.dc import DCConfig, GradientMatching
from gendistill.objectives.dm import DistributionMatching
from gendistill.objectives.mtt import MTTConfig, TrajectoryMatching
from gendistill.objectives.pool import PoolConfig, PoolMatching
from gendistill.objectives.regularisers import REGULARISERS, Regulariser, regularised
from gendistill.registry import Registry

__all__ = [
    "OBJECTIVES",
    "REGULARISERS",
    "AdversarialRealism",
    "ClassAnchor",
    "DCConfig",
    "MTTConfig",
    "MatchContext",
    "Objective",
    "ObjectiveConfig",
    "PoolConfig",
    "PoolMatching",
    "Regulariser",
    "regularised",
]

OBJECTIVES: Registry[type[Objective]] = Registry("objective")
OBJECTIVES.register("dc")(GradientMatching)
OBJECTIVES.register("dm")(DistributionMatching)
OBJECTIVES.register("mtt")(TrajectoryMatching)
OBJECTIVES.register("pool")(PoolMatching)
