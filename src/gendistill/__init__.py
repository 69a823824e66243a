"""gendistill: generative dataset distillation with one evaluation core."""

from __future__ import annotations

from gendistill.artifacts import EmbeddingSet, GeneratorSet, ImageSet, load
from gendistill.data import load_dataset
from gendistill.errors import UserError
from gendistill.models import create_model
from gendistill.version import __version__

__all__ = [
    "EmbeddingSet",
    "GeneratorSet",
    "ImageSet",
    "UserError",
    "__version__",
    "create_model",
    "load",
    "load_dataset",
    "distill",
    "evaluate",
    "evaluate_artifact",
    "load_prior",
    "select",
    "train_prior",
]

# the verbs of the upper layers, imported on first use: ``import gendistill`` stays light
_LAZY = {
    "distill": "gendistill.methods",
    "evaluate": "gendistill.evaluate",
    "evaluate_artifact": "gendistill.evaluate",
    "select": "gendistill.evaluate",
    "load_prior": "gendistill.priors",
    "train_prior": "gendistill.priors.fit",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
