"""Rendering through a network in chunks, so one step's memory is that of one chunk, not of the whole set.

A parameterisation whose images come out of a network (GAN latents, a generator's weights) implements
``_render(rows)`` and inherits the rest. With ``chunk`` set, ``render`` returns the images as a leaf
computed without a graph; after the loss's backward the engine calls ``finish_backward``, which
re-renders ``chunk`` rows at a time with their graph and backpropagates the images' gradient through
them (GLaD's trick). ``_render`` must therefore give the same images twice within an iteration.
"""

from __future__ import annotations

import torch


class ChunkedRendering:
    """Mixin for :class:`~gendistill.params.base.Parameterisation` subclasses that render through a network."""

    chunk: int | None
    labels: torch.Tensor

    def _init_chunks(self, chunk: int | None) -> None:
        self.chunk = chunk
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _render(self, rows: torch.Tensor | slice) -> torch.Tensor:
        """The normalised images of ``rows``, with their graph when grad is enabled."""
        raise NotImplementedError

    def _chunks(self, n: int) -> list[slice]:
        step = self.chunk or n
        return [slice(i, min(i + step, n)) for i in range(0, n, step)]

    def _render_rows(self, rows: torch.Tensor) -> torch.Tensor:
        if self.chunk is None or not torch.is_grad_enabled():
            return self._render(rows)
        with torch.no_grad():
            images = torch.cat([self._render(rows[s]) for s in self._chunks(len(rows))])
        images.requires_grad_(True)
        self._pending.append((rows, images))
        return images

    def render(self) -> torch.Tensor:
        return self._render_rows(torch.arange(len(self.labels), device=self.labels.device))

    def render_classes(self, classes: list[int]) -> torch.Tensor:
        return self._render_rows(torch.nonzero(self.class_mask(classes)).squeeze(1))

    def finish_backward(self) -> None:
        """Backpropagate the gradient that reached the chunk-rendered images into the learnable tensors."""
        pending, self._pending = self._pending, []
        for rows, images in pending:
            if images.grad is None:
                continue
            for s in self._chunks(len(rows)):
                torch.autograd.backward(self._render(rows[s]), images.grad[s])

    def render_rows_with_graph(self, rows: torch.Tensor) -> torch.Tensor:
        return self._render(rows)

    def graph_images(self, n: int) -> int:
        return min(n, self.chunk) if self.chunk else n
