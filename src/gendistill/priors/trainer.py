"""The loop every prior trainer shares: train to ``recipe.steps`` with progress, a loss history, sample
grids and atomic checkpoints, resuming from the checkpoint when one is there.

A trainer provides ``recipe`` (``steps``, ``sample_every``, ``checkpoint_every``), ``step``, ``seconds``,
``train_step() -> {loss name: value}``, ``sample_grid(path)``, ``save_checkpoint(folder, history)`` and
``load_checkpoint(folder) -> history``; its random draws are functions of (seed, step), so the resumed run
takes exactly the steps the uninterrupted one would.
"""

from __future__ import annotations

import time
from pathlib import Path

from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import tune_cpu_allocator

HISTORY_EVERY = 50  # steps between history entries


class PriorTrainer:
    desc = "prior"

    def run(self, out: Path, progress: bool = True) -> list[dict]:
        """Train until ``recipe.steps``, checkpointing into ``out`` (resumes from it if present)."""
        tune_cpu_allocator()
        ckpt = out / "checkpoint"
        history = self.load_checkpoint(ckpt) if ckpt.is_dir() else []
        samples = out / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        bar = progress_bar(total=self.recipe.steps, initial=self.step, desc=self.desc, disable=not progress)
        while self.step < self.recipe.steps:
            t0 = time.perf_counter()
            losses = self.train_step()
            self.seconds += time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix_str(" ".join(f"{k} {v:.4f}" for k, v in losses.items()), refresh=False)
            if self.step % HISTORY_EVERY == 0:
                history.append({"step": self.step, **losses, "seconds": self.seconds})
            last = self.step == self.recipe.steps
            if self.step % self.recipe.sample_every == 0 or last:
                self.sample_grid(samples / f"step{self.step:06d}.png")
            if self.step % self.recipe.checkpoint_every == 0 or last:
                self.save_checkpoint(ckpt, history)
        bar.close()
        return history
