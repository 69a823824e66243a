"""gendistill: generative dataset distillation with one evaluation core."""

from __future__ import annotations

from gendistill.artifacts import EmbeddingSet, GeneratorSet, ImageSet, SyntheticSet, load  # noqa: E402
from gendistill.data import load_dataset  # noqa: E402
from gendistill.errors import UserError  # noqa: E402
from gendistill.models import create_model  # noqa: E402
from gendistill.version import __version__  # noqa: E402

__all__ = [
    "EmbeddingSet",
    "GeneratorSet",
    "ImageSet",
    "SyntheticSet",
    "UserError",
    "__version__",
    "create_model",
    "load",
    "load_dataset",
    "evaluate",
]


def __getattr__(name: str):  # noqa: ANN202 - lazy: evaluation pulls in more than loading needs
    if name == "evaluate":
        from gendistill.evaluate import evaluate

        return evaluate
    raise AttributeError(name)
