"""Class-relevant feature distance (CRFD, H-GLaD): a cheap stand-in for "train a network and test it".

For ``nets`` randomly initialised networks (fixed seeds), each class and each block, the mean feature map
of augmented real images is computed once; a synthetic set's CRFD is the squared distance between its own
per-class, per-block means under the same networks and those real means, summed over classes and blocks
and averaged over networks. Lower is closer to the real class-conditional feature statistics.

One deliberate reading of the method: the paper's text compares the synthetic means "under a fresh random
network" with real means averaged over several others; features of independently initialised networks
are not aligned, so that difference would be mostly noise. Here both sides go through the same networks,
which makes CRFD a deterministic function of the synthetic set.
"""

from __future__ import annotations

import torch

from gendistill.augment import DSA, strategy_for
from gendistill.data import ImageDataset
from gendistill.models import create_model
from gendistill.runtime import autocast, derived_seed


class CRFD:
    def __init__(
        self,
        dataset: ImageDataset,
        model: str = "convnet",
        nets: int = 4,
        real_per_class: int = 256,
        seed: int = 0,
        device: torch.device | None = None,
        augment: bool = True,
        amp: torch.dtype | None = None,
    ) -> None:
        self.dataset, self.model, self.seed, self.amp = dataset, model, seed, amp
        self.device = device or torch.device("cpu")
        self.augment = DSA(strategy_for(dataset.name)) if augment else None
        self.nets = [self._net(n) for n in range(nets)]
        index = dataset.class_indices("train")
        g = torch.Generator().manual_seed(derived_seed(seed, -7))
        picks = [idx[torch.randperm(len(idx), generator=g)[:real_per_class]] for idx in index]
        # real_means[n][c] = list over blocks of the mean feature map of class c under net n
        self.real_means = [
            [self._means(net, dataset.train_images[p], c) for c, p in enumerate(picks)] for net in self.nets
        ]

    def _net(self, n: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(self.seed, n, -11))
            net = create_model(self.model, self.dataset.channels, self.dataset.num_classes, self.dataset.image_size)
        return net.to(self.device).eval().requires_grad_(False)

    @torch.no_grad()
    def _means(self, net: torch.nn.Module, images: torch.Tensor, c: int) -> list[torch.Tensor]:
        x = images.to(self.device)
        if self.augment is not None:  # per-image draws, seeded by class: the same for every call
            x = self.augment(x, generator=torch.Generator().manual_seed(derived_seed(self.seed, c, -13)))
        with autocast(self.device, self.amp):  # the feature maps in bf16 when asked, their means in fp32
            features = net.features(x)
        return [f.float().mean(0) for f in features]

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[int] | None = None) -> float:
        """CRFD of a labeled set; ``classes``: only these classes' terms (a process's share under torchrun)."""
        total = 0.0
        for net, real in zip(self.nets, self.real_means):
            for c in classes if classes is not None else range(self.dataset.num_classes):
                mine = images[labels == c]
                if len(mine) == 0:
                    continue
                for r, s in zip(real[c], self._means(net, mine, c)):
                    total += float((r - s).square().sum())
        return total / len(self.nets)

    def of(self, params, classes: list[int] | None = None) -> float:
        """CRFD of a parameterisation's current images (the engine's snapshot selector), over ``classes``."""
        with torch.no_grad():
            if classes is None:
                return self(params.render().detach(), params.labels)
            images = params.render_classes(classes).detach()
            return self(images, params.labels[params.class_mask(classes)], classes)
