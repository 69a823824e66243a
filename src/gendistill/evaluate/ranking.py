"""DD-Ranking's scores of a distilled set, computed natively from accuracies this toolkit measured.

DD-Ranking (Li et al. 2025, ``pip install ddranking``) argues that a set's accuracy mixes what the images
carry with what the evaluation protocol adds (soft labels, augmentation); it scores a set against two
references trained under the *same* protocol:

- IOR, improvement over random: ``Acc(set) - Acc(random subset of the same size)``;
- HLR, hard-label recovery: ``Acc(full real data, hard labels) - Acc(set, hard labels)``;
- ``alpha = w * IOR - (1 - w) * HLR`` (``w = 0.5`` by default, so alpha lies in [-1, 1]);
- the label-robust score ``(e^alpha - e^-1) / (e - e^-1)``, alpha mapped monotonically onto [0, 1].

Accuracies go in as fractions (0.895, not 89.5), as DD-Ranking's formulas use them; ``from_percent`` converts
this toolkit's reports. The package itself needs torchvision and CIFAR/ImageNet, hence this reimplementation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from gendistill.errors import UserError


def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name} = {value} is not an accuracy fraction in [0, 1]; divide percentages by 100")
    return float(value)


@dataclass(frozen=True)
class RankingScores:
    ior: float
    hlr: float
    alpha: float
    score: float
    weight: float

    def to_dict(self) -> dict:
        return asdict(self)


def ior(set_acc: float, random_acc: float) -> float:
    """Improvement over a random subset of the same size under the same protocol."""
    return _fraction("set accuracy", set_acc) - _fraction("random-subset accuracy", random_acc)


def hlr(full_acc: float, set_hard_acc: float) -> float:
    """How much of full real data's hard-label accuracy the set leaves unrecovered (lower is better)."""
    return _fraction("full-data accuracy", full_acc) - _fraction("set hard-label accuracy", set_hard_acc)


def label_robust_score(alpha: float) -> float:
    """DD-Ranking's normalisation of alpha in [-1, 1] onto [0, 1]: (e^alpha - e^-1) / (e - e^-1)."""
    return (math.exp(alpha) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


def ranking_scores(
    set_acc: float, random_acc: float, full_acc: float, set_hard_acc: float | None = None, weight: float = 0.5
) -> RankingScores:
    """All of DD-Ranking's scores; ``set_hard_acc`` defaults to ``set_acc`` (a hard-label protocol)."""
    if not 0.0 <= weight <= 1.0:
        raise UserError(f"the IOR weight must be in [0, 1], got {weight}")
    i = ior(set_acc, random_acc)
    h = hlr(full_acc, set_acc if set_hard_acc is None else set_hard_acc)
    alpha = weight * i - (1.0 - weight) * h
    return RankingScores(ior=i, hlr=h, alpha=alpha, score=label_robust_score(alpha), weight=weight)


def from_percent(*accuracies: float) -> tuple[float, ...]:
    """This toolkit's percentages as the fractions DD-Ranking's formulas take."""
    return tuple(a / 100.0 for a in accuracies)
