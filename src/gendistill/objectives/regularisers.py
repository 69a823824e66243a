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

    def carried_state(self) -> dict[str, torch.Tensor]:
        """Tensors carried between iterations (a critic trained alongside), for checkpoints; most carry none."""
        return {}

    def restore_state(self, state: dict[str, torch.Tensor], ctx: MatchContext) -> None:
        """Take back what :meth:`carried_state` gave, on resume."""


REGULARISERS: Registry[type[Regulariser]] = Registry("regulariser")


def regularised(
    loss: torch.Tensor, regularisers: list[Regulariser], params: Parameterisation, ctx: MatchContext, iteration: int
) -> torch.Tensor:
    """``loss`` plus every regulariser's weighted term; weight-0 terms are skipped, not multiplied by 0."""
    for reg in regularisers:
        if reg.weight:
            loss = loss + reg.weight * reg.term(params, ctx, iteration)
    return loss


def _mean_off_diagonal_cosine(x: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity over the ordered pairs (i, j), i != j, of the rows of ``x`` (needs >= 2 rows)."""
    h = torch.nn.functional.normalize(x, dim=1)
    n = len(h)
    return ((h @ h.t()).sum() - torch.diagonal(h @ h.t()).sum()) / (n * (n - 1))


def _class_groups(features: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    return [features[labels == c] for c in torch.unique(labels).tolist()]


@REGULARISERS.register("intra")
class IntraClassDiversity(Regulariser):
    """Intra-class diversity: samples of a class pushed apart in the matching network's feature space.

    term = mean over the classes c with n_c >= 2 of  1/(n_c (n_c - 1)) sum_{i != j} cos(e_i, e_j),
    e_i the features of class c's synthetic samples under the network the objective matches with at this
    iteration (the same fresh network; DM shares its features, other objectives get one extra embedding).
    In [-1, 1]; minimising it spreads a class's samples, so one model does not collapse to one image per
    class. Classes with one sample contribute nothing. Under torchrun each rank sums its own classes and
    divides by the number of such classes over all ranks, so the summed gradients are one process's.
    """

    name = "intra"

    def term(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> torch.Tensor:
        features, labels = ctx.synthetic_features(params, iteration)
        terms = [_mean_off_diagonal_cosine(g) for g in _class_groups(features, labels) if len(g) >= 2]
        count = _world_sum(len(terms), features.device)
        return torch.stack(terms).sum() / count if terms else features.sum() * 0.0


@REGULARISERS.register("inter")
class InterClassSeparation(Regulariser):
    """Inter-class discrimination: class centres pushed apart in the same feature space.

    term = 1/(K (K - 1)) sum_{c != d} cos(m_c, m_d),  m_c = mean over class c's samples of e_i / ||e_i||,
    over the K classes present. In [-1, 1]; minimising it turns the centres away from each other.

    Under torchrun each rank holds some classes: the centres are gathered from every rank with a
    differentiable all-gather, and the term divided by the world size, so that the gradients the engine
    sums over ranks are those of one process.
    """

    name = "inter"

    def term(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> torch.Tensor:
        features, labels = ctx.synthetic_features(params, iteration)
        h = torch.nn.functional.normalize(features, dim=1)
        centres = torch.stack([g.mean(0) for g in _class_groups(h, labels)])
        centres, size = _gather_rows(centres)
        if len(centres) < 2:
            return features.sum() * 0.0
        return _mean_off_diagonal_cosine(centres) / size


def _world_sum(value: int, device: torch.device) -> int:
    """``value`` summed over ranks (itself without torchrun)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], device=device)
    dist.all_reduce(t)
    return int(t)


def _gather_rows(rows: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Every rank's ``rows`` (with their graph), concatenated, and the world size (1 without torchrun)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows, 1
    from torch.distributed.nn.functional import all_gather

    size = dist.get_world_size()
    counts = [torch.zeros(1, dtype=torch.long, device=rows.device) for _ in range(size)]
    dist.all_gather(counts, torch.tensor([len(rows)], device=rows.device))
    most = int(max(int(c) for c in counts))
    padded = torch.cat([rows, rows.new_zeros(most - len(rows), rows.shape[1])])  # all_gather needs equal shapes
    parts = all_gather(padded)
    return torch.cat([p[: int(c)] for p, c in zip(parts, counts)]), size
