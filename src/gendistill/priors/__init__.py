"""Generative priors: the hierarchical interface, the built-in StyleGAN, adapters, and shipped weights.

``load_prior(spec)`` takes the name of a shipped prior (``gendistill.priors.shipped()``), a folder
written by ``save_pretrained`` (a GAN's gendistill folder, or a diffusers model folder), or an NVlabs
``.pkl`` (with ``trust_pickle=True``).
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from gendistill.errors import UserError, did_you_mean
from gendistill.priors.base import HierarchicalPrior, check_prior, from_normalized, prefix, suffix, to_normalized
from gendistill.priors.families import (
    CODES,
    CONDITIONINGS,
    FAMILIES,
    LAYERS,
    PriorFamily,
    build,
    build_from,
    claimed,
    family_of,
    register_family,
    require,
)
from gendistill.priors.stylegan import StyleGAN, StyleGANConfig
from gendistill.store import open_folder

WEIGHTS = Path(__file__).parent / "weights"

__all__ = [
    "CODES",
    "CONDITIONINGS",
    "FAMILIES",
    "LAYERS",
    "HierarchicalPrior",
    "PriorFamily",
    "StyleGAN",
    "StyleGANConfig",
    "build",
    "build_from",
    "check_diffusion_fits",
    "check_fits",
    "check_prior",
    "family_of",
    "from_normalized",
    "load_diffusion_prior",
    "load_prior",
    "prefix",
    "recommended_lr",
    "register_family",
    "require",
    "shipped",
    "shipped_for",
    "shipped_help",
    "suffix",
    "to_normalized",
]

register_family(
    PriorFamily(
        "hierarchical-gan",
        "class-conditional GANs whose synthesis is an ordered list of layers (StyleGAN family)",
        builders={"StyleGAN": StyleGAN.from_config},
        can=frozenset({LAYERS, CODES}),
    )
)


def _is_diffusers(folder: Path) -> bool:
    from gendistill.priors.diffusion import is_diffusers_folder  # diffusers is imported only to load one

    return is_diffusers_folder(folder)


def _load_diffusers(folder: Path, trust_pickle: bool) -> nn.Module:
    from gendistill.priors.diffusion import load_diffusers

    return load_diffusers(folder, trust_pickle)


register_family(
    PriorFamily(
        "diffusion",
        "diffusers UNet2DConditionModel folders, pixel or latent (VAE), conditioned on token matrices",
        can=frozenset({CONDITIONINGS}),
        claims=_is_diffusers,
        load_folder=_load_diffusers,
    )
)


def shipped() -> list[str]:
    """Names of the priors whose weights come with the package."""
    if not WEIGHTS.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS.iterdir() if (p / "config.json").is_file() or _is_diffusers(p))


def shipped_for(dataset: str, kind: str = "gan") -> str | None:
    """The shipped prior a command uses for ``dataset`` when none is named: ``<dataset>`` for the GAN,
    ``<dataset>-diffusion`` for the diffusion model; None when this install ships none for it."""
    name = dataset if kind == "gan" else f"{dataset}-{kind}"
    names = shipped()
    if name not in names or (kind == "diffusion") != _is_diffusers(WEIGHTS / name):
        return None
    return name


def shipped_help() -> str:
    """For ``--help``: the shipped priors by name, or that there are none."""
    return ", ".join(shipped()) or "none in this install"


def load_prior(
    spec: str | os.PathLike | nn.Module,
    code_dir: str | os.PathLike | None = None,
    trust_pickle: bool = False,
    image_size: int | None = None,
) -> nn.Module:
    """A ready, frozen prior from a shipped name, a saved folder, an NVlabs pickle, or a module."""
    if isinstance(spec, nn.Module):
        check_prior(spec)
        return spec.eval().requires_grad_(False)
    path = Path(spec)
    if path.suffix == ".pkl":
        from gendistill.priors.nvlabs import load_network_pickle

        return load_network_pickle(path, code_dir, trust_pickle, image_size)
    folder = _folder(spec)
    if folder is not None:
        return claimed(folder, trust_pickle) or build(open_folder(folder, "prior"))
    if os.sep in str(spec) or path.exists():
        raise UserError(f"prior {spec} is neither a saved prior folder nor a .pkl network")
    if not shipped():
        raise UserError(f"no prior named {spec!r}: this install ships none; train one with 'gendistill prior train'")
    hint = f"; or train one: gendistill prior train --dataset {spec} --out runs/prior, then --prior runs/prior"
    raise UserError(str(did_you_mean("prior", str(spec), shipped())) + hint)


def load_diffusion_prior(
    spec: str | os.PathLike,
    dataset,
    user: str,
    trust_pickle: bool = False,
    device=None,
) -> tuple[nn.Module, Path]:
    """A diffusion prior that can render ``dataset``'s images, and its folder (what embeddings refer to)."""
    folder = _folder(spec)
    if folder is None:
        raise UserError(f"{user} needs a diffusion prior folder (diffusers: unet/, scheduler/); {spec} is none")
    prior = load_prior(folder, trust_pickle=trust_pickle)
    require(prior, CONDITIONINGS, user)
    check_diffusion_fits(prior, dataset)
    return (prior.to(device) if device is not None else prior), folder


def check_diffusion_fits(prior: nn.Module, dataset) -> None:
    """A diffusion prior renders any size (resized to its working resolution) and grey into RGB, not RGB into grey."""
    if prior.image_channels == 1 and dataset.channels > 1:
        raise UserError(
            f"the prior in {prior.source} makes grey images, {dataset.name} has {dataset.channels} "
            "channels; use a prior with as many channels"
        )


def _folder(spec: str | os.PathLike | nn.Module) -> Path | None:
    """The saved-prior folder ``spec`` names, if it names one. A bare shipped name wins over a same-named
    folder in the working directory (often the dataset's own folder); write ./fashion-mnist for the folder."""
    if isinstance(spec, nn.Module):
        return None
    if str(spec) in shipped():
        return WEIGHTS / str(spec)
    return Path(spec) if Path(spec).is_dir() else None


def recommended_lr(spec: str | os.PathLike | nn.Module, objective: str) -> tuple[float, float] | None:
    """``(lr_f, lr_w)`` measured for this saved prior and objective, if its config records them.

    Latent learning rates depend on the prior's feature scale: GLaD's published ones were tuned on
    StyleGAN-XL and are 100x too large for the shipped Fashion-MNIST prior (benchmarks/results/latent.md),
    so a prior may carry its own, chosen on the validation split, under ``"latent_lr": {objective: [f, w]}``.
    """
    if isinstance(spec, nn.Module):
        config = getattr(spec, "pretrained_config", {})
    else:
        folder = _folder(spec)
        try:
            config = open_folder(folder, "prior").config if folder is not None else {}
        except UserError:
            return None  # load_prior reports an unreadable folder in one line; the defaults serve until then
    lr = config.get("latent_lr", {}).get(objective) if isinstance(config.get("latent_lr"), dict) else None
    return (float(lr[0]), float(lr[1])) if lr else None


def check_fits(prior: nn.Module, dataset) -> None:
    """One line naming the mismatch between a prior and the dataset it should render."""
    if prior.num_classes != dataset.num_classes:
        raise UserError(
            f"the prior has {prior.num_classes} classes, {dataset.name} has {dataset.num_classes}; "
            "use a prior trained on this dataset"
        )
    if (prior.image_channels, prior.image_size) != (dataset.channels, dataset.image_size):
        made, needed = f"{prior.image_channels}x{prior.image_size}px", f"{dataset.channels}x{dataset.image_size}px"
        raise UserError(f"the prior makes {made} images, {dataset.name} is {needed}; use a prior trained on it")
