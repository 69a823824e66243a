"""What a distillation leaves behind, in three kinds; ``load(DIR)`` returns the right one.

- :class:`ImageSet`: a fixed set of labeled images (pixel methods, GLaD/H-GLaD
  renderings, real-subset baselines).
- :class:`GeneratorSet`: a generator's weights plus per-image codes; renders a fixed set of any IPC.
- :class:`EmbeddingSet`: per-image conditionings plus a reference (path, hash) to the prior that decodes them.

A new kind is a class with ``class_name``, ``from_stored``, ``save``, ``storage_bytes`` and
``training_set``, registered in :data:`KINDS`.
"""

from __future__ import annotations

import os

from gendistill.artifacts.base import Artifact, check_dataset, check_fits, make_meta
from gendistill.artifacts.embeddings import EmbeddingSet, content_hash
from gendistill.artifacts.generator import GeneratorSet
from gendistill.artifacts.images import GRID_FILE, TENSORS_FILE, ImageSet
from gendistill.errors import UserError, an
from gendistill.registry import Registry
from gendistill.store import CONFIG_FILE, open_folder

__all__ = [
    "CONFIG_FILE",
    "GRID_FILE",
    "KINDS",
    "TENSORS_FILE",
    "Artifact",
    "EmbeddingSet",
    "GeneratorSet",
    "ImageSet",
    "check_dataset",
    "check_fits",
    "content_hash",
    "load",
    "make_meta",
]

KINDS: Registry[type[Artifact]] = Registry("artifact kind")
for _kind in (ImageSet, GeneratorSet, EmbeddingSet):
    KINDS.register(_kind.class_name)(_kind)


def load(path: str | os.PathLike) -> Artifact:
    """Read an artifact folder (or a file inside it) into the object of the kind it holds."""
    path = os.fspath(path)
    if os.path.isfile(path) and path.endswith(".safetensors"):
        path = os.path.dirname(path) or "."
    stored = open_folder(path, "artifact")
    if stored.class_name not in KINDS:
        raise UserError(
            f"{path} holds {an(stored.class_name)}, not an artifact (artifacts are one of "
            f"{', '.join(KINDS.names())}); pass a folder written by distill or select"
        )
    return KINDS.get(stored.class_name).from_stored(stored)
