"""A class-anchoring term as a regulariser: each synthetic image kept recognisable as its own class by a
classifier trained on the real training split.

Why: distribution matching compares class means, so a class's synthetic set can drift into a mixture
that still matches the mean (a fine-tuned generator's samples of one class start to look like another's:
the first DCGM-style runs showed trousers in the dress row). Pixels initialised from real images rarely
drift that far; a generator's shared weights do. A frozen real-data classifier's cross-entropy on the
synthetic images is the most direct pressure against it, and the same teacher the soft-label protocol
and the prior-quality figures use (cached on disk, trained once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from gendistill.evaluate.teacher import JUDGE, teacher
from gendistill.objectives.regularisers import REGULARISERS, Regulariser, _world_sum

if TYPE_CHECKING:
    from torch import nn

    from gendistill.objectives.base import MatchContext
    from gendistill.params import Parameterisation


@REGULARISERS.register("classify")
class ClassAnchor(Regulariser):
    """term = (1/N) sum_i CE(T(x_i), y_i) over the N synthetic images of every rank,

    T a ConvNet-3 trained ``JUDGE.epochs`` (2) on the real training split (frozen, eval mode; the cached
    teacher of :mod:`~gendistill.evaluate.teacher`), x_i this iteration's synthetic image of class y_i.
    Non-negative; ln(K) for a classifier that cannot tell the K classes apart, 0 when every image is its
    class beyond doubt. Under torchrun each rank sums its own images' terms and divides by the number of
    images over all ranks, so the summed gradients are one process's.
    """

    name = "classify"
    TEACHER = JUDGE

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(weight)
        self._teacher: nn.Module | None = None

    def term(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> torch.Tensor:
        if self._teacher is None:
            self._teacher = teacher(ctx.dataset, self.TEACHER, ctx.device)[0].eval().requires_grad_(False)
        images, labels = ctx.synthetic_images(params, iteration)  # DM's own render: not a second generator pass
        with ctx.autocast():
            logits = self._teacher(images).float()
        total = _world_sum(len(labels), images.device)
        return F.cross_entropy(logits, labels, reduction="sum") / total
