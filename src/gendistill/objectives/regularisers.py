"""Regularisers: weighted terms the engine adds to any objective's loss.

An objective says what must match; a regulariser shapes the synthetic set beyond that (DCGM's
intra-class diversity and inter-class separation are two). The engine adds ``weight * term(...)`` to
every loss the objective yields, so a regulariser works with every objective and parameterisation, and a
weight of 0 leaves the run exactly as it was (the term is not even computed).

A regulariser is a subclass of :class:`Regulariser` registered in :data:`REGULARISERS`; its docstring
states its formula.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gendistill.errors import UserError
from gendistill.registry import Registry

if TYPE_CHECKING:
    from gendistill.objectives.base import MatchContext
    from gendistill.params import Parameterisation


class Regulariser:
    name = "regulariser"

    def __init__(self, weight: float = 1.0) -> None:
        if not weight >= 0:  # also refuses NaN
            raise UserError(f"the weight of regulariser {self.name} must be >= 0, got {weight}")
        self.weight = float(weight)

    def term(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> torch.Tensor:
        """The unweighted term for this iteration; draws its randomness from ``ctx.rng(iteration, ...)``."""
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.name, "weight": self.weight}


REGULARISERS: Registry[type[Regulariser]] = Registry("regulariser")


def regularised(loss: torch.Tensor, regularisers: list[Regulariser], params: Parameterisation, ctx: MatchContext,
                iteration: int) -> torch.Tensor:  # fmt: skip
    """``loss`` plus every regulariser's weighted term; weight-0 terms are skipped, not multiplied by 0."""
    for reg in regularisers:
        if reg.weight:
            loss = loss + reg.weight * reg.term(params, ctx, iteration)
    return loss
