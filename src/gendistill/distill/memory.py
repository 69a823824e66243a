"""A step's memory, estimated before the run starts, so that a run far too large for the machine is
refused in one line instead of being killed by the kernel (or ending in an allocator traceback) minutes in.

The estimate measures, with ``torch.autograd.graph.saved_tensors_hooks``, the bytes autograd keeps per
image for backward: in the parameterisation's rendering (the prior's synthesis for GLaD/H-GLaD; nothing
for pixels) and in one forward of the matching network, which the objective's ``graphs_per_image`` scales
(DC/DSA back-propagate through a gradient, MTT through its unrolled student steps). It is a lower bound
on the peak, not a prediction of it: it only has to tell a run that cannot fit from one that may.
"""

from __future__ import annotations

import torch

from gendistill.objectives import MatchContext, Objective
from gendistill.params import Parameterisation
from gendistill.runtime import check_memory, saved_bytes


def step_bytes(params: Parameterisation, objective: Objective, ctx: MatchContext) -> int:
    """Estimated bytes one iteration holds for backward over the classes ``ctx`` owns."""
    rows = torch.nonzero(params.class_mask(ctx.classes)).squeeze(1)
    n = len(rows)
    probe = rows[:2]
    render, images = saved_bytes(lambda: params.render_rows_with_graph(probe))
    net = ctx.fresh_model(0)
    matching, _ = saved_bytes(lambda: net(images.detach().requires_grad_(True)))
    render, matching = render // len(probe), matching // len(probe)
    held = params.graph_images(n)  # images whose rendering graph is held at once
    return held * render + n * matching * objective.graphs_per_image


def check_fits_in_memory(
    params: Parameterisation, objective: Objective, ctx: MatchContext, free: int | None = None
) -> int:
    """Refuse, in one line with the estimate and the knobs, a run whose step cannot fit in ``free`` bytes
    (default: what the device has available now); return the estimate."""
    need = step_bytes(params, objective, ctx)
    check_memory(
        need,
        "one step of this run (autograd's saved tensors alone)",
        "lower it with --chunk K (glad/hglad: render K samples at a time), a smaller --ipc, or a smaller --real-batch",
        ctx.device,
        free,
    )
    return need
