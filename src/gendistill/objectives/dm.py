"""Distribution matching (Zhao & Bilen 2023): match per-class mean embeddings under a fresh random net."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from gendistill.objectives.base import MatchContext, Objective, has_batch_norm
from gendistill.params import Parameterisation


class DistributionMatching(Objective):
    """Loss = sum over classes of || mean embed(real_c) - mean embed(syn_c) ||^2, with siamese DSA.

    Faster than the reference without changing the loss: real images pass without a graph, through a
    compiled forward (``MatchContext.embed_real``), and the synthetic images of every class share one
    forward pass when no batch norm couples the samples.
    """

    name = "dm"  # no settings of its own: the real batch, network and augmentation are the run's

    def losses(self, params: Parameterisation, ctx: MatchContext, iteration: int) -> Iterator[torch.Tensor]:
        net = ctx.fresh_model(iteration)
        net.train().requires_grad_(False)
        syn_all = params.render_classes(ctx.classes)
        syn_labels = params.labels[params.class_mask(ctx.classes)]
        ctx.publish_images(iteration, syn_all, syn_labels)
        reals, syns = [], []
        for c in ctx.classes:
            g = ctx.rng(iteration, c)
            real, syn = ctx.real_batch_of(c, g), syn_all[syn_labels == c]
            if ctx.augment:
                real, syn = ctx.augment.siamese(real, syn, generator=g)
            reals.append(real)
            syns.append(syn)
        with ctx.autocast():  # the embeddings come back in fp32 (.float()), so the means and the loss are fp32
            real_means = [e.float().mean(0) for e in ctx.embed_real(net, reals)]
            if has_batch_norm(net):
                syn_means = [net.embed(s).float().mean(0) for s in syns]
            else:  # the synthetic images are few: one pass for every class
                syn_emb = net.embed(torch.cat(syns)).float()
                syn_means = [e.mean(0) for e in syn_emb.split([len(s) for s in syns])]
                ctx.publish_features(iteration, syn_emb, torch.cat([syn_labels[syn_labels == c] for c in ctx.classes]))
        yield sum(((r - s) ** 2).sum() for r, s in zip(real_means, syn_means))
