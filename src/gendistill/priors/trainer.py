"""The loop every prior trainer shares: train to ``recipe.steps`` with progress, a loss history, sample
grids and atomic checkpoints, resuming from the checkpoint when one is there.

A trainer provides ``recipe`` (``steps``, ``sample_every``, ``checkpoint_every``), ``step``, ``seconds``,
``train_step() -> {loss name: value}``, ``sample_grid(path)``, ``save_checkpoint(folder, history)`` and
``load_checkpoint(folder) -> history``; its random draws are functions of (seed, step), so the resumed run
takes exactly the steps the uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from gendistill.errors import UserError, diverged
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import all_finite, check_memory, tune_cpu_allocator

HISTORY_EVERY = 50  # steps between history entries


class PriorTrainer:
    desc = "prior"

    def run(self, out: Path, progress: bool = True) -> list[dict]:
        """Train until ``recipe.steps``, checkpointing into ``out`` (resumes from it if present)."""
        tune_cpu_allocator()
        self.check_memory()
        ckpt = out / "checkpoint"
        history = self.load_checkpoint(ckpt) if ckpt.is_dir() else []
        samples = out / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        bar = progress_bar(total=self.recipe.steps, initial=self.step, desc=self.desc, disable=not progress)
        while self.step < self.recipe.steps:
            t0 = time.perf_counter()
            losses = self.train_step()
            if not all(math.isfinite(v) for v in losses.values()):
                bad = ", ".join(f"{k} {v}" for k, v in losses.items() if not math.isfinite(v))
                raise self.diverged(f"the loss became non-finite ({bad})", history, ckpt)
            self.seconds += time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix_str(" ".join(f"{k} {v:.4f}" for k, v in losses.items()), refresh=False)
            if self.step % HISTORY_EVERY == 0:
                history.append({"step": self.step, **losses, "seconds": self.seconds})
            last = self.step == self.recipe.steps
            if self.step % self.recipe.sample_every == 0 or last:
                self.sample_grid(samples / f"step{self.step:06d}.png")
            if self.step % self.recipe.checkpoint_every == 0 or last:
                if not all_finite(self.parameters()):  # a finite loss can still leave non-finite weights
                    raise self.diverged("the weights became non-finite", history, ckpt)
                self.save_checkpoint(ckpt, history)
        bar.close()
        return history

    def diverged(self, what: str, history: list[dict], ckpt: Path) -> UserError:
        finite = [h["loss"] for h in history if "loss" in h]
        kept = ckpt if ckpt.is_dir() else None
        return diverged(f"step {self.step}", what, finite, kept, "lower --lr and run again (--force starts over)")

    def parameters(self) -> list[torch.Tensor]:
        """Every learnable tensor, for the finiteness check before each checkpoint."""
        raise NotImplementedError

    def bytes_per_image(self) -> int:
        """Bytes one training image of a step holds for backward (measured on a two-image probe)."""
        raise NotImplementedError

    def check_memory(self) -> None:
        """Refuse, before the first step, a batch far larger than the memory free now."""
        need = self.bytes_per_image() * self.recipe.batch
        check_memory(need, f"a batch of {self.recipe.batch:,} images", "pass a smaller --batch", self.device)
