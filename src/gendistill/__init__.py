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
    "evaluate",
]


def __getattr__(name: str):
    if name == "evaluate":
        from gendistill.evaluate import evaluate

        return evaluate
    raise AttributeError(name)
