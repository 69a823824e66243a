"""A class-conditional generator and one code per stored image as the synthetic set (DCGM-style).

The learnable tensors are every weight of the generator (a copy of the prior, fine-tuned; or the same
architecture from random weights with ``from_scratch``) and the code table ``codes [N, z_dim]``: stored
image ``i`` is ``G(codes[i], labels[i])``. What a user keeps is the weights and the codes
(:class:`~gendistill.artifacts.GeneratorSet`), from which a fixed set of any IPC is sampled: each class's
stored codes first, then fresh codes.

Training-time mix: so that fresh codes give good images too (what serves an IPC above the stored one),
each iteration renders a ``fresh`` fraction of the rows, drawn at random per row, from fresh codes
instead of their stored ones; those rows train the generator only. The draw is a pure function of
(seed, iteration), so resume and sharding stay exact. Outside an iteration (snapshot scores,
validation, the artifact) every row renders from its stored code.

Optimiser: Adam (a network's weights; SGD's fixed step suits images and latents, not a generator),
``lr_g`` for the weights and ``lr_codes`` for the codes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from gendistill.artifacts import GeneratorSet
from gendistill.data import ImageDataset, check_ipc
from gendistill.errors import UserError
from gendistill.params.base import PRIOR_HELP, ParamConfig, Parameterisation
from gendistill.params.chunked import ChunkedRendering
from gendistill.priors import CODES, check_fits, load_prior, require, shipped, suffix, to_normalized
from gendistill.priors.base import decode, draw_codes
from gendistill.priors.stylegan import StyleGAN, StyleGANConfig
from gendistill.runtime import autocast, derived_seed
from gendistill.validate import limit


def random_codes(
    prior: nn.Module, labels: torch.Tensor, dataset: ImageDataset, candidates: int, generator: torch.Generator
) -> torch.Tensor:
    """The prior's own draw, one code per row."""
    return draw_codes(prior, len(labels), generator)


def teacher_screened_codes(
    prior: nn.Module,
    labels: torch.Tensor,
    dataset: ImageDataset,
    candidates: int,
    generator: torch.Generator,
    batch: int = 500,
) -> torch.Tensor:
    """For each row, the best of ``candidates`` codes by the probability a real-data classifier (the
    cached 2-epoch ConvNet-3 teacher, as the ``classify`` regulariser's) gives the row's class.

    Why: a class-conditional GAN's sample is not always of its class (the shipped prior draws shoes for
    some bag codes), and optimisation moves a code only so far: a stored image that starts as another
    class tends to stay one, and DM's class means tolerate it. Screening at the start costs
    ``candidates`` renders per row once. Every draw comes from ``generator`` (seeded), in a fixed order."""
    from gendistill.evaluate.teacher import JUDGE, teacher

    device = next(prior.parameters()).device
    judge = teacher(dataset, JUDGE, device)[0].eval()  # trained here on first use: outside no_grad
    pool = draw_codes(prior, len(labels) * candidates, generator).view(len(labels), candidates, -1)
    flat_codes, flat_labels = pool.flatten(0, 1), labels.repeat_interleave(candidates)
    probs = []
    with torch.no_grad():
        for i in range(0, len(flat_codes), batch):
            z, y = flat_codes[i : i + batch], flat_labels[i : i + batch]
            images = to_normalized(decode(prior, z, y).float(), dataset.mean, dataset.std)
            probs.append(judge(images).softmax(1).gather(1, y.to(device)[:, None]).squeeze(1).cpu())
    best = torch.cat(probs).view(len(labels), candidates).argmax(1)
    return pool[torch.arange(len(labels)), best]


CODE_INITS = {"random": random_codes, "teacher": teacher_screened_codes}
WEIGHT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class GeneratorConfig(ParamConfig):
    """How a generator parameterisation is set up.

    ``prior``: the generator to start from (a shipped name, a folder; None: the one shipped for the
    dataset). ``from_scratch``: its architecture with fresh random weights instead of its weights.
    ``fresh``: the fraction of rows rendered from fresh codes in each iteration (see the module).
    ``weights_dtype``: how the artifact stores the weights (float16 halves the bytes; the run is fp32).
    ``train_codes``: whether the code table learns (DCGM) or stays the seeded draw it started as (DiM,
    whose generator alone learns: then ``fresh`` may be 1, every row fresh every iteration).
    ``code_init``: how the stored codes start: ``random`` (the prior's own draw) or ``teacher`` (for each
    row, the best of ``candidates`` draws by a real-data classifier's probability of the row's class; see
    :func:`teacher_screened_codes`).
    """

    prior: Any = limit(None, help=PRIOR_HELP)
    from_scratch: bool = limit(False, help="generator: the prior's architecture, random weights")
    fresh: float = limit(0.5, ge=0, le=1, help="generator: fraction of rows drawn from fresh codes per iteration")
    lr_g: float = limit(1e-4, gt=0, help="generator: Adam learning rate of its weights")
    lr_codes: float = limit(1e-2, gt=0, help="generator: Adam learning rate of the codes")
    chunk: int | None = limit(None, ge=1, help="render this many samples at a time to bound memory")
    weights_dtype: str = limit(
        "float16", help="generator: how the artifact stores the weights", choices=tuple(WEIGHT_DTYPES)
    )
    train_codes: bool = limit(True, help="generator: the codes learn (DCGM) or stay their seeded draw (DiM)")
    code_init: str = limit(
        "random",
        help="generator: stored codes from the prior's draw, or the best of --candidates by a real-data "
        "classifier's probability of their class",
        choices=tuple(CODE_INITS),
    )
    candidates: int = limit(8, ge=1, le=10_000, help="generator, --code-init teacher: draws screened per code")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fresh == 1.0 and self.train_codes:
            raise UserError(
                f"fresh must be in [0, 1), got {self.fresh} (1 would never train the stored codes; "
                "it is allowed with train_codes=False)"
            )
        if self.code_init not in CODE_INITS:
            raise UserError(f"unknown code_init {self.code_init!r}; use {', '.join(CODE_INITS)}")
        if self.weights_dtype not in WEIGHT_DTYPES:
            raise UserError(f"unknown weights_dtype {self.weights_dtype!r}; use {', '.join(WEIGHT_DTYPES)}")

    def to_dict(self) -> dict[str, Any]:
        prior = self.prior if isinstance(self.prior, str) or self.prior is None else type(self.prior).__name__
        return {**super().to_dict(), "prior": prior}


class GeneratorCodes(ChunkedRendering, Parameterisation):
    """DCGM-style: a generator's weights and a code table, all learnable."""

    name = "generator"
    Config = GeneratorConfig
    config: GeneratorConfig
    shared = True
    takes_image_lr = False  # its weights and codes have their own rates (lr_g, lr_codes)

    def __init__(
        self,
        generator: nn.Module,
        codes: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        config: GeneratorConfig,
        seed: int,
    ) -> None:
        super().__init__(labels, num_classes)
        require(generator, CODES, "--param generator")
        self.generator = generator.train().requires_grad_(True)
        self.codes = nn.Parameter(codes.clone().float(), requires_grad=config.train_codes)
        self.mean, self.std, self.config, self.seed = mean, std, config, seed
        self._init_chunks(config.chunk)
        self._fresh: tuple[torch.Tensor, torch.Tensor] | None = None  # (row mask, codes) inside an iteration

    @classmethod
    def build(
        cls,
        dataset: ImageDataset,
        ipc: int,
        config: GeneratorConfig,
        generator: torch.Generator,
        device: torch.device | None = None,
        objective: str = "dm",
    ) -> GeneratorCodes:
        check_ipc(dataset, ipc)
        seed = int(torch.randint(2**62, (1,), generator=generator))
        if config.from_scratch and config.prior is None and dataset.name not in shipped():
            # from scratch needs only an architecture: the built-in StyleGAN's defaults, sized to the data
            model = _from_scratch(
                StyleGAN(StyleGANConfig(dataset.num_classes, dataset.image_size, dataset.channels)), seed
            )
        else:
            config = replace(config, prior=config.prior if config.prior is not None else dataset.name)
            prior = load_prior(config.prior, image_size=dataset.image_size)
            require(prior, CODES, "--param generator")
            check_fits(prior, dataset)
            model = _from_scratch(prior, seed) if config.from_scratch else copy.deepcopy(prior)
        labels = torch.arange(dataset.num_classes).repeat_interleave(ipc)
        codes = CODE_INITS[config.code_init](model, labels, dataset, config.candidates, generator)
        params = cls(model, codes, labels, dataset.num_classes, dataset.mean, dataset.std, config, seed)
        return params.to(device or torch.device("cpu"))

    # --- rendering ---
    def _render(self, rows: torch.Tensor | slice) -> torch.Tensor:
        z = self.codes[rows]
        if self._fresh is not None:
            mask, fresh = self._fresh
            z = torch.where(mask[rows, None], fresh[rows], z)
        labels = self.labels[rows]
        with autocast(z.device, self.amp):  # the generator's layers in bf16 when asked; weights and codes stay fp32
            ws = self.generator.mapping(z, labels)
            images = suffix(self.generator, self.generator.synthesis_input(ws), ws, 0)
        return to_normalized(images.float(), self.mean, self.std)

    def begin_iteration(self, iteration: int) -> None:
        """Draw this iteration's fresh rows and codes (from the seed and the iteration alone)."""
        if not self.config.fresh:
            return
        g = torch.Generator().manual_seed(derived_seed(self.seed, iteration, 7))
        mask = torch.rand(len(self.labels), generator=g) < self.config.fresh
        fresh = draw_codes(self.generator, len(self.labels), g)
        self._fresh = mask.to(self.codes.device), fresh.to(self.codes.device)

    def end_iteration(self) -> None:
        self._fresh = None

    # --- what the engine asks of a parameterisation ---
    def param_groups(self, lr: float) -> list[dict]:
        """The method's image learning rate does not apply: weights and codes have their own."""
        groups = [{"params": list(self.generator.parameters()), "lr": self.config.lr_g}]
        return groups + ([{"params": [self.codes], "lr": self.config.lr_codes}] if self.config.train_codes else [])

    def optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        return torch.optim.Adam(groups)

    def describe(self) -> dict:
        weights = sum(p.numel() for p in self.generator.state_dict().values())
        return {"generator_parameters": weights, "generator_config": self.generator.config_dict()}

    @torch.no_grad()
    def to_artifact(self, meta: dict, lr: torch.Tensor | None = None) -> GeneratorSet:
        """The generator (frozen, on the CPU) and the codes; the artifact renders its fixed set itself.

        The weights are rounded to ``weights_dtype`` first, so the fixed set the evaluator trains on is
        exactly what the stored bytes render, not what the fp32 weights of the run would have rendered.
        """
        generator = copy.deepcopy(self.generator).cpu().eval().requires_grad_(False)
        dtype = WEIGHT_DTYPES[self.config.weights_dtype]
        for t in generator.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.to(dtype).float())
        meta = {**meta, "normalization": meta.get("normalization", {"mean": list(self.mean), "std": list(self.std)})}
        return GeneratorSet(
            generator,
            self.codes.detach().cpu().clone(),
            self.labels.cpu().clone(),
            meta,
            weights_dtype=WEIGHT_DTYPES[self.config.weights_dtype],
        )


def _from_scratch(prior: nn.Module, seed: int) -> nn.Module:
    """The prior's architecture with fresh weights, seeded; needs a class built from its ``config``."""
    config = getattr(prior, "config", None)
    if config is None:
        raise UserError(
            f"--from-scratch needs a generator class built from its config (the built-in StyleGAN); "
            f"{type(prior).__name__} is not"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = type(prior)(config)
    model.pretrained_config = dict(getattr(prior, "pretrained_config", {}), from_scratch=True)
    return model
