"""Seconds per training step of each named network on 256-image DSA batches of Fashion-MNIST, the unit of the
Diffusion Inversion efficiency study's fixed budget: ``python benchmarks/step_cost.py resnet18 convnet``.

Each network trains 4 and then 12 steps; the difference over 8 steps is the cost of a step without the
fixed costs (building the network, the test passes)."""

from __future__ import annotations

import sys
import time

import torch

from gendistill import load_dataset
from gendistill.errors import UserError
from gendistill.evaluate import evaluate, select
from gendistill.evaluate.mixtures import fixed_steps


def step_seconds(net: str, images, dataset) -> tuple[float, float]:
    """(seconds a step, fixed seconds a run)."""
    took = {}
    for steps in (4, 12):
        t0 = time.perf_counter()
        evaluate(
            fixed_steps(images, 256, seed=0), dataset, models=[net], runs=1, augment="dsa", epochs=steps, progress=False
        )
        took[steps] = time.perf_counter() - t0
    per = (took[12] - took[4]) / 8
    return per, took[4] - 4 * per


def main() -> None:
    dataset = load_dataset("fashion-mnist")
    images = select(dataset, "random", 50, seed=0)
    print(f"threads {torch.get_num_threads()}", flush=True)
    for net in sys.argv[1:] or ["resnet18", "convnet"]:
        try:
            per, fixed = step_seconds(net, images, dataset)
        except UserError as e:  # an unknown network name: one line, not a traceback
            raise SystemExit(f"step_cost: {e}") from None
        print(
            f"{net}: {per:.2f} s/step; 300 steps x 3 runs = {per * 900 / 60:.1f} min per cell "
            f"(+{fixed:.0f} s fixed per run)",
            flush=True,
        )


if __name__ == "__main__":
    main()
