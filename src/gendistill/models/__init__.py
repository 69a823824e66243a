"""Classifiers behind one registry: ``create_model(name, channels, num_classes, image_size, **kw)``.

A name may carry keyword overrides, ``"convnet[depth=4,norm=batch]"``, so the CLI can name any variant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from gendistill.errors import UserError
from gendistill.models.alexnet import AlexNet
from gendistill.models.base import Classifier
from gendistill.models.convnet import ConvNet
from gendistill.models.lenet import LeNet
from gendistill.models.mlp import MLP
from gendistill.models.resnet import ResNet
from gendistill.models.vgg import VGG
from gendistill.models.vit import ViT
from gendistill.registry import Registry

__all__ = ["Classifier", "MODELS", "POOLS", "create_model", "expand_models", "parse_model_spec"]

MODELS: Registry[Callable[..., Classifier]] = Registry("model")
MODELS.register("convnet")(ConvNet)
MODELS.register("convnet-bn")(partial(ConvNet, norm="batch"))
MODELS.register("convnet-ln")(partial(ConvNet, norm="layer"))
MODELS.register("convnet-nn")(partial(ConvNet, norm="none"))
MODELS.register("mlp")(MLP)
MODELS.register("lenet")(LeNet)
MODELS.register("alexnet")(AlexNet)
MODELS.register("alexnet-bn")(partial(AlexNet, norm="batch"))
MODELS.register("alexnet-in")(partial(AlexNet, norm="instance"))
MODELS.register("vgg11")(VGG)
MODELS.register("vgg11-bn")(partial(VGG, norm="batch"))
MODELS.register("resnet18")(ResNet)
MODELS.register("resnet18-in")(partial(ResNet, norm="instance"))
MODELS.register("vit")(ViT)

# Named groups of networks, usable wherever a list of models is: ``--models cross``.
POOLS: Registry[tuple[str, ...]] = Registry("model pool")
# The field's unseen networks. The plain AlexNet trains with its own recipe (evaluate.recipe.ARCH_RECIPES);
# alexnet-bn / alexnet-in are the normalised variants, for comparison (benchmarks/results/cross.md).
POOLS.register("cross")(("resnet18", "vgg11", "alexnet", "vit"))


def expand_models(specs: list[str] | tuple[str, ...]) -> list[str]:
    """Pool names replaced by their networks, in order; every name checked against the registry."""
    out: list[str] = []
    for spec in specs:
        for name in POOLS.get(spec) if spec in POOLS else (spec,):
            MODELS.get(parse_model_spec(name)[0])  # fail on a bad name before any training
            out.append(name)
    return out


_SPEC = re.compile(r"^([\w-]+)(?:\[(.*)\])?$")


def _value(text: str) -> object:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_model_spec(spec: str) -> tuple[str, dict]:
    """``"convnet[depth=4,norm=batch]"`` -> ``("convnet", {"depth": 4, "norm": "batch"})``."""
    m = _SPEC.match(spec.strip())
    if not m:
        raise UserError(f"bad model spec {spec!r}; write NAME or NAME[key=value,...]")
    kwargs = {}
    for item in filter(None, (m.group(2) or "").split(",")):
        key, sep, val = item.partition("=")
        if not sep:
            raise UserError(f"bad model option {item!r} in {spec!r}; write key=value")
        kwargs[key.strip()] = _value(val.strip())
    return m.group(1), kwargs


def create_model(name: str, channels: int, num_classes: int, image_size: int, **kwargs) -> Classifier:
    base, spec_kwargs = parse_model_spec(name)
    factory = MODELS.get(base)
    try:
        return factory(channels, num_classes, image_size, **{**spec_kwargs, **kwargs})
    except TypeError as e:
        raise UserError(f"bad options for model {base!r}: {e}") from None
