"""What every artifact kind shares: its metadata, the dataset it was made from, and what it can hand the
evaluator.

An artifact is a saved folder (:mod:`gendistill.store`) of one of the kinds in
:data:`gendistill.artifacts.KINDS`. The evaluator never learns which kind it has: it asks
:meth:`Artifact.training_set` for a labeled image set, and a kind that cannot give one says why in one line.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gendistill.errors import UserError, an
from gendistill.store import write_folder

if TYPE_CHECKING:
    from gendistill.artifacts.images import ImageSet
    from gendistill.data import ImageDataset

logger = logging.getLogger(__name__)


GRID_FILE = "grid.png"


class Artifact:
    """Base of the artifact kinds. ``meta`` is the JSON-able description written to ``config.json``."""

    class_name = "Artifact"
    meta: dict

    def training_set(self) -> ImageSet:
        """The fixed labeled image set the evaluator trains on (its "reading (a)")."""
        raise UserError(f"{an(self.class_name)} holds no images to train on")

    def storage_bytes(self) -> int:
        """Bytes of what a user must keep to use this artifact."""
        raise NotImplementedError

    def stamp(self) -> dict:
        """``meta`` completed with what every saved artifact records."""
        meta = {k: v for k, v in self.meta.items() if k not in ("kind", "format_version", "gendistill_version")}
        meta["storage_bytes"] = self.storage_bytes()
        meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        return meta

    def write(
        self, path: str | os.PathLike, force: bool, described: dict, tensors: dict, grid: ImageSet | None = None
    ) -> Path:
        """Save as a store folder: the stamped meta plus ``described``, the tensor files, and ``grid``'s
        class grid; missing parent folders are created, an existing folder needs ``force``."""
        meta = {**self.stamp(), **described}
        extra = (lambda tmp: grid.grid().save(tmp / GRID_FILE, format="PNG")) if grid is not None else None
        write_folder(path, self.class_name, meta, tensors, force, extra=extra)
        self.meta = meta
        return Path(path)


def make_meta(method: str, dataset: ImageDataset, ipc: int, config: dict, seed: int) -> dict:
    """The metadata every artifact carries, including the identity of the data it was made from."""
    return {
        "method": method,
        "dataset": dataset.name,
        "dataset_identity": dataset.identity(),
        "classes": dataset.classes,
        "num_classes": dataset.num_classes,
        "ipc": ipc,
        "normalization": {"mean": list(dataset.mean), "std": list(dataset.std)},
        "config": config,
        "seed": seed,
    }


def check_dataset(meta: dict, dataset: ImageDataset, explicit: bool = False) -> None:
    """Refuse data other than the artifact's own: another name, or the same shape with other contents.

    ``explicit``: the user named the dataset on purpose (``--dataset``), so a mismatch only warns.
    Artifacts written before identities were recorded are checked by name alone.
    """
    ident = meta.get("dataset_identity") or {}
    made = meta.get("dataset")
    problem = None
    if made is not None and made != dataset.name:
        problem = f"it was made on {made} but is being evaluated on {dataset.name}"
    elif ident.get("fingerprint") and ident["fingerprint"] != dataset.fingerprint():
        where = ident.get("source") or "an unrecorded folder"
        problem = (
            f"it was made on {made} from {where}, whose contents differ from {dataset.source} "
            f"(fingerprint {ident['fingerprint']} vs {dataset.fingerprint()})"
        )
    if problem is None:
        return
    if explicit:
        logger.warning("%s; going on because --dataset was given", problem)
        return
    raise UserError(
        f"{problem}; pass --data-dir with the original data, or --dataset to evaluate on another dataset knowingly"
    )


def check_fits(images: ImageSet, dataset: ImageDataset) -> None:
    """Refuse an image set whose shape or classes cannot be trained and tested on ``dataset``."""
    if images.image_shape != dataset.image_shape:
        raise UserError(
            f"artifact images are {list(images.image_shape)} (C,H,W) but {dataset.name} images are "
            f"{list(dataset.image_shape)}; evaluate it on the dataset it was made from"
        )
    k = images.meta.get("num_classes")
    if k is not None and k != dataset.num_classes:
        raise UserError(
            f"artifact has {k} classes but {dataset.name} has {dataset.num_classes}; use the matching dataset"
        )
    if len(images) and int(images.labels.max()) >= dataset.num_classes:
        raise UserError(
            f"artifact labels reach {int(images.labels.max())} but {dataset.name} has {dataset.num_classes} classes"
        )
