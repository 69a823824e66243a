"""Prior families: what kinds of pretrained generator gendistill can load, and what each can do.

A family names the saved classes it reads (the ``_class_name`` tags of :mod:`gendistill.store` folders)
and its capabilities, so that a parameterisation can refuse, in one line, a prior that cannot do what it
needs. Two families: hierarchical GANs (the built-in StyleGAN, saved as gendistill folders whose
``_class_name`` a builder reads; NVlabs pickles come in through :mod:`gendistill.priors.nvlabs`), and
diffusion models (diffusers folders, which a family claims by their layout and loads itself:
:mod:`gendistill.priors.diffusion`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gendistill.errors import UserError, an
from gendistill.registry import Registry
from gendistill.store import Stored

# what a family may be able to do
LAYERS = "layers"  # split the synthesis at any layer k (GLaD, H-GLaD)
CODES = "codes"  # draw codes and decode (code, class) to an image (a generator set)
CONDITIONINGS = "conditionings"  # denoise under a token conditioning, invert an image to one (Diffusion Inversion)
Builder = Callable[[dict, dict[str, torch.Tensor], str], nn.Module]  # (config, weights, where) -> module
FolderLoader = Callable[[Path, bool], nn.Module]  # (folder, trust_pickle) -> module


@dataclass(frozen=True)
class PriorFamily:
    name: str
    description: str
    builders: dict[str, Builder] = field(default_factory=dict)  # _class_name -> builder
    weights: str = "model"  # the safetensors file of a saved prior of this family
    can: frozenset[str] = frozenset()
    # a family whose folders are not gendistill store folders (diffusers'): which folders it reads, and how
    claims: Callable[[Path], bool] | None = None
    load_folder: FolderLoader | None = None


FAMILIES: Registry[PriorFamily] = Registry("prior family")


def register_family(family: PriorFamily) -> PriorFamily:
    FAMILIES.register(family.name)(family)
    return family


def family_of(class_name: str) -> PriorFamily | None:
    return next((f for f in map(FAMILIES.get, FAMILIES.names()) if class_name in f.builders), None)


def known_classes() -> list[str]:
    return sorted(c for f in map(FAMILIES.get, FAMILIES.names()) for c in f.builders)


def claimed(folder: Path, trust_pickle: bool = False) -> nn.Module | None:
    """The prior in ``folder`` if a family with its own folder layout claims it, else None."""
    for family in map(FAMILIES.get, FAMILIES.names()):
        if family.claims is not None and family.claims(folder):
            module = family.load_folder(folder, trust_pickle)
            module.prior_family = family.name
            return module
    return None


def build(stored: Stored) -> nn.Module:
    """The frozen prior a saved folder holds, built by the family its tag belongs to."""
    family = _family(stored)
    return build_from(stored.class_name, stored.config, stored.tensors(family.weights), str(stored.path))


def build_from(class_name: str, config: dict, weights: dict[str, torch.Tensor], where: str) -> nn.Module:
    """A frozen prior of class ``class_name`` from its config and weights (stored wherever the caller keeps
    them: a prior folder, or inside an artifact)."""
    family = family_of(class_name)
    if family is None:
        raise UserError(f"{where} names an unknown generator class {class_name!r}; known: {', '.join(known_classes())}")
    module = family.builders[class_name](config, weights, where)
    module.prior_family = family.name
    return module


def _family(stored: Stored) -> PriorFamily:
    family = family_of(stored.class_name)
    if family is not None:
        return family
    if stored.class_name.startswith(("UNet", "AutoencoderKL")):
        raise UserError(
            f"{stored.path} is one component of a diffusers model ({stored.class_name}); pass the "
            "model's folder, the one holding unet/ and scheduler/"
        )
    raise UserError(
        f"{stored.path} holds {an(stored.class_name)}, not a prior (priors are one of "
        f"{', '.join(known_classes())}); pass a folder from 'gendistill prior train'"
    )


def require(prior: nn.Module, capability: str, user: str) -> None:
    """Refuse a prior whose family lacks ``capability``, naming who needed it."""
    name = getattr(prior, "prior_family", None)
    if name is not None and capability not in FAMILIES.get(name).can:
        raise UserError(f"{user} needs a prior that can do {capability!r}; the {name} prior given cannot")
