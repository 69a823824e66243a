"""Diffusion Inversion's second half: new training images from the inverted embeddings.

Per image i and variant k (``per_image`` of them), with a generator seeded by (seed, i, k):

    j   = a random image of i's class (possibly i itself)
    e   = e_i + interp * (e_j - e_i) + noise * N(0, I)
    x   = sample(initial noise, e), classifier-free guided: u + guidance * (c - u)

where the unconditional branch u uses the mean of all the set's embeddings (``uncond="mean"``, the public
recipe's choice) or the null conditioning the prior was trained with (``"null"``: all zeros for gendistill's
prior; a Stable Diffusion folder has no such null here, the empty prompt's tokens would need its text
encoder). Each image depends on its own seed and conditioning only (the samplers are deterministic given
the initial noise), so the output is the same for any batch size and any number of processes.

As a distiller (``ipc``): ``ipc`` images per class from class-level conditionings instead of one per real
image: the class mean of the embeddings (each image a different noise draw around it), or ``ipc`` k-means
modes of the class's embeddings (one image per mode), as D4M and MGD3 take modes of their latents.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from gendistill.artifacts import EmbeddingSet, ImageSet
from gendistill.errors import UserError
from gendistill.priors.base import to_normalized
from gendistill.priors.diffusion import SCHEDULERS, DiffusionPrior
from gendistill.registry import Registry
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import autocast, derived_seed
from gendistill.validate import MAX_IMAGE_SIZE, check_fields, limit

UNCONDS = ("mean", "null")


@dataclass
class GenerateConfig:
    per_image: int = limit(5, ge=1, le=10_000, help="variants per inverted image")
    noise: float = limit(0.1, ge=0, le=1, help="std of the Gaussian noise on each embedding")
    interp: float = limit(0.1, ge=0, le=1, help="interpolation toward a same-class partner")
    guidance: float = limit(
        2.0, ge=0, le=100, hint="1 turns guidance off", help="classifier-free guidance scale (1: none)"
    )
    uncond: str = limit(
        "mean", help="unconditional branch: the mean embedding or the null conditioning", choices=("mean", "null")
    )
    # DPM-Solver++ (2nd order): the public recipe's 100 DDIM steps are not needed
    steps: int = limit(20, ge=1, le=10_000, help="sampler steps")
    scheduler: str = limit("dpm", help="dpm: DPM-Solver++ (2nd order); ddim: DDIM, eta 0", choices=("dpm", "ddim"))
    seed: int = limit(0, help="seed of every random draw")
    batch: int = limit(100, ge=1, help="images per sampling pass (memory only; never changes the result)")
    size: int | None = limit(
        None,
        ge=8,
        le=MAX_IMAGE_SIZE,
        help="sampling resolution in px (default: the dataset's); the output is always resized to the dataset's",
    )
    ipc: int | None = limit(
        None, ge=1, help="instead of --per-image: this many images per class from class-level conditionings"
    )
    modes: str = limit(
        "kmeans",
        help="with --ipc: k-means modes of each class's embeddings, or the class mean",
        choices=("kmeans", "mean"),
    )

    def check(self) -> None:
        check_fields(self)
        if self.uncond not in UNCONDS:
            raise UserError(f"--uncond must be one of {', '.join(UNCONDS)}, got {self.uncond!r}")
        SCHEDULERS.get(self.scheduler)
        MODES.get(self.modes)


@dataclass
class Plan:
    """What to sample: one conditioning, label, source and seed per output image."""

    conditionings: torch.Tensor  # [M, tokens, width]
    labels: torch.Tensor  # [M]
    sources: torch.Tensor  # [M]: the embedding (per-image plans) or class mode (ipc plans) each came from
    seeds: list[int]


def per_image_plan(embeddings: torch.Tensor, labels: torch.Tensor, config: GenerateConfig) -> Plan:
    """``per_image`` noisy, interpolated variants of every embedding."""
    members = {int(c): torch.nonzero(labels == c, as_tuple=True)[0] for c in labels.unique()}
    conds, out_labels, sources, seeds = [], [], [], []
    for i in range(len(labels)):
        same = members[int(labels[i])]
        for k in range(config.per_image):
            seed = derived_seed(config.seed, i, k)
            g = torch.Generator().manual_seed(seed)
            j = int(same[torch.randint(len(same), (1,), generator=g)])
            e = embeddings[i] + config.interp * (embeddings[j] - embeddings[i])
            conds.append(e + config.noise * torch.randn(e.shape, generator=g))
            out_labels.append(int(labels[i]))
            sources.append(i)
            seeds.append(seed)
    return Plan(torch.stack(conds), torch.tensor(out_labels), torch.tensor(sources), seeds)


# class-level conditionings: (class embeddings [n, tokens, width], ipc, generator) -> [ipc, tokens, width]
MODES: Registry = Registry("conditioning mode")


@MODES.register("mean")
def _class_mean(e: torch.Tensor, ipc: int, g: torch.Generator) -> torch.Tensor:
    return e.mean(0, keepdim=True).expand(ipc, -1, -1)


@MODES.register("kmeans")
def _kmeans(e: torch.Tensor, ipc: int, g: torch.Generator, iterations: int = 25) -> torch.Tensor:
    """Lloyd's k-means on the flattened embeddings, started from ``ipc`` distinct random members."""
    if ipc > len(e):
        raise UserError(
            f"--ipc {ipc} asks for more modes than the class has inverted images ({len(e)}); invert "
            "more per class or lower --ipc"
        )
    x = e.flatten(1).double()
    centres = x[torch.randperm(len(x), generator=g)[:ipc]].clone()
    for _ in range(iterations):
        assign = torch.cdist(x, centres).argmin(1)
        for c in range(ipc):
            if (assign == c).any():
                centres[c] = x[assign == c].mean(0)
    return centres.float().view(ipc, *e.shape[1:])


def class_plan(embeddings: torch.Tensor, labels: torch.Tensor, config: GenerateConfig) -> Plan:
    """``ipc`` images per class, each from a class-level conditioning plus its own noise draw."""
    conds, out_labels, sources, seeds = [], [], [], []
    for c in labels.unique().tolist():
        g = torch.Generator().manual_seed(derived_seed(config.seed, "class", c))
        modes = MODES.get(config.modes)(embeddings[labels == c], config.ipc, g)
        for k in range(config.ipc):
            seed = derived_seed(config.seed, c, k)
            draw = torch.Generator().manual_seed(seed)
            conds.append(modes[k] + config.noise * torch.randn(modes[k].shape, generator=draw))
            out_labels.append(c)
            sources.append(k)
            seeds.append(seed)
    return Plan(torch.stack(conds), torch.tensor(out_labels), torch.tensor(sources), seeds)


def unconditional(prior: DiffusionPrior, embeddings: torch.Tensor, how: str) -> torch.Tensor:
    if how == "mean":
        return embeddings.mean(0, keepdim=True)
    if prior.encoder is None:
        raise UserError(f"the prior in {prior.source} was not trained with a null conditioning; use --uncond mean")
    return prior.null_conditioning(1).cpu()


@torch.no_grad()
def sample_plan(
    prior: DiffusionPrior,
    plan: Plan,
    uncond: torch.Tensor,
    config: GenerateConfig,
    size: int,
    out_size: int,
    channels: int,
    rows: torch.Tensor | None = None,
    amp: torch.dtype | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Images in [-1, 1] (``out_size`` px, ``channels``) for the plan's ``rows`` (default: all)."""
    rows = torch.arange(len(plan.labels)) if rows is None else rows
    device = prior.device
    shape = prior.latent_shape(1, size)[1:]
    out = []
    bar = progress_bar(total=len(rows), desc="generate", disable=not progress)
    for part in rows.split(config.batch):
        noise = torch.stack(
            [torch.randn(shape, generator=torch.Generator().manual_seed(plan.seeds[r])) for r in part.tolist()]
        ).to(device)
        with autocast(device, amp):
            z = prior.sample(
                noise,
                plan.conditionings[part].to(device),
                uncond.to(device),
                config.guidance,
                config.steps,
                config.scheduler,
            )
            out.append(prior.to_pixels(z.float(), out_size, channels).clamp(-1, 1).float().cpu())
        bar.update(len(part))
    bar.close()
    return torch.cat(out) if out else torch.zeros(0, channels, out_size, out_size)


def generate(
    prior: DiffusionPrior,
    embeddings: EmbeddingSet,
    config: GenerateConfig,
    amp: torch.dtype | None = None,
    progress: bool = True,
) -> ImageSet | None:
    """The image set of ``config`` from ``embeddings``, in the normalisation and at the resolution of the
    dataset they came from. Under torchrun each rank samples the images of its own classes and every rank
    returns the merged set (identical to a one-process run: each image has its own seed)."""
    from gendistill.distill import distributed as dd

    config.check()
    meta = embeddings.meta
    channels, out_size = meta["image_shape"][0], meta["image_shape"][1]
    norm = meta["normalization"]
    if embeddings.embeddings.shape[-1] != prior.width:
        raise UserError(
            f"the embeddings are {embeddings.embeddings.shape[-1]} wide but the prior's cross-attention "
            f"is {prior.width} wide; use the prior they were inverted with"
        )
    plan = (class_plan if config.ipc else per_image_plan)(embeddings.embeddings, embeddings.labels, config)
    uncond = unconditional(prior, embeddings.embeddings, config.uncond)
    rank, size = dd.world()
    mine = torch.isin(plan.labels, torch.tensor(dd.owned_classes(int(meta["num_classes"]), rank, size)))
    rows = torch.nonzero(mine, as_tuple=True)[0]
    t0 = time.perf_counter()
    local = sample_plan(
        prior, plan, uncond, config, config.size or out_size, out_size, channels, rows, amp, progress and rank == 0
    )
    seconds = time.perf_counter() - t0
    pixels = torch.zeros(len(plan.labels), *local.shape[1:])
    pixels[rows] = local
    if size > 1:
        pixels = dd.merge_rows(pixels.to(prior.device), mine).cpu()
        seconds = dd.max_scalar(seconds, prior.device)
    return image_set(pixels, plan, embeddings, config, seconds, norm)


def image_set(
    pixels: torch.Tensor, plan: Plan, embeddings: EmbeddingSet, config: GenerateConfig, seconds: float, norm: dict
) -> ImageSet:
    meta = {
        k: embeddings.meta[k]
        for k in ("dataset", "dataset_identity", "classes", "num_classes", "normalization")
        if k in embeddings.meta
    }
    ipc = config.ipc or int(torch.bincount(plan.labels).max())
    meta.update(
        {
            "method": "diffusion-inversion",
            "ipc": ipc,
            "seed": config.seed,
            "config": {
                "generate": asdict(config),
                "inversion": embeddings.meta.get("config", {}),
                "prior": embeddings.prior,
                "size": config.size or embeddings.meta["image_shape"][1],
            },
            "generate_seconds": round(seconds, 2),
            "images_per_second": round(len(plan.labels) / max(seconds, 1e-9), 2),
        }
    )
    images = to_normalized(pixels, tuple(norm["mean"]), tuple(norm["std"]))
    extra = {"source": plan.sources.clone()}
    if embeddings.indices is not None and embeddings.meta.get("split", "train") == "train":
        extra["real_indices"] = embeddings.indices.clone()  # what evaluate --train-on real|both trains with
    return ImageSet(images, plan.labels.clone(), meta, extra=extra)
