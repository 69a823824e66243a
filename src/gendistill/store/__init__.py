"""One on-disk format for everything gendistill saves: a folder of safetensors files plus ``config.json``.

``config.json`` is a JSON object carrying the saved object's settings and three reserved keys:
``_class_name`` (what the folder holds; loaders choose the class from it, as diffusers'
``from_pretrained`` reads its ``_class_name``), ``_format_version`` (of this layout) and
``_gendistill_version`` (of the code that wrote it). Tensors live in named ``<name>.safetensors`` files
beside it. Artifacts, priors, checkpoints and expert trajectories are all such folders.

Writes are atomic (the folder appears whole under its final name, or not at all); reads never unpickle;
every way a folder can be wrong (missing, not a folder, truncated, not JSON, JSON but not an object, no
tag, a newer format) is one :class:`UserError` naming the folder and what to do.

Folders written before this format (format 1) still open: each kind had its own JSON file and tag
(``meta.json`` with ``"kind": "images"``, ``config.json`` with ``"class": "StyleGAN"``, ``state.json``,
``experts.json``); :func:`open_folder` reads them as the same class names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from gendistill.errors import UserError
from gendistill.io import atomic_dir, save_tensors, write_json
from gendistill.version import __version__

CONFIG_FILE = "config.json"
FORMAT_VERSION = 2
RESERVED = ("_class_name", "_format_version", "_gendistill_version")

# format 1: (the JSON file, the class it held, how to read the class name from it)
_LEGACY: tuple[tuple[str, Callable[[dict], str | None]], ...] = (
    ("meta.json", lambda c: {"images": "ImageSet"}.get(c.get("kind", "images"))),
    ("state.json", lambda c: "Checkpoint"),
    ("experts.json", lambda c: "Trajectories"),
)


@dataclass
class Stored:
    """An opened folder: what it holds (``class_name``), its settings, and lazy access to its tensors."""

    path: Path
    class_name: str
    config: dict
    format_version: int

    def has(self, name: str) -> bool:
        return (self.path / f"{name}.safetensors").is_file()

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        """The tensors of ``<name>.safetensors``; a missing or damaged file is one line naming it."""
        return read_tensors(self.path / f"{name}.safetensors", self.path)

    def settings(self) -> dict:
        """The config without the reserved keys."""
        return {k: v for k, v in self.config.items() if k not in RESERVED}


def read_tensors(file: Path, folder: Path | None = None) -> dict[str, torch.Tensor]:
    where = folder or file.parent
    if not file.is_file():
        raise UserError(f"{where} is incomplete: {file.name} is missing; re-create it")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise UserError(f"{file} is truncated or corrupted ({reason}); re-create it") from None


def _read_json(file: Path) -> dict:
    try:
        obj = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{file} is corrupted ({e.__class__.__name__}); re-create it") from None
    except OSError as e:
        raise UserError(f"cannot read {file}: {e.strerror}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{file} holds a JSON {type(obj).__name__}, not an object; re-create it")
    return obj


def open_folder(path: str | os.PathLike, what: str = "folder") -> Stored:
    """Open a saved folder (either format); ``what`` names the expected thing in error messages."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} not found")
    if not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder written by gendistill")
    if (path / CONFIG_FILE).is_file():
        config = _read_json(path / CONFIG_FILE)
        name = config.get("_class_name")
        if name is None and isinstance(config.get("class"), str):  # format 1 prior
            return Stored(path, config["class"], config, 1)
        if not isinstance(name, str):
            raise UserError(
                f"{path} is not a gendistill folder: its {CONFIG_FILE} names no _class_name "
                f"(a foreign model folder?); pass a folder that gendistill wrote"
            )
        version = config.get("_format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UserError(
                f"{path} was written by a newer gendistill (format {version}, this version reads up "
                f"to {FORMAT_VERSION}); upgrade gendistill to read it"
            )
        return Stored(path, name, config, version)
    for file, tag in _LEGACY:
        if (path / file).is_file():
            config = _read_json(path / file)
            name = tag(config)
            if name is None:
                raise UserError(
                    f"{path} holds an unknown kind {config.get('kind')!r}; it was not written by this "
                    "version of gendistill"
                )
            return Stored(path, name, config, 1)
    raise UserError(f"{path} is not a {what} written by gendistill: it has no {CONFIG_FILE}")


def header(class_name: str) -> dict:
    return {"_class_name": class_name, "_format_version": FORMAT_VERSION, "_gendistill_version": __version__}


def write_config(folder: str | os.PathLike, class_name: str, config: Mapping) -> None:
    """Write (atomically) just the ``config.json`` of a folder whose tensor files are added one by one as
    a long job finishes them (expert trajectories); each of those files is written atomically too."""
    body = {k: v for k, v in config.items() if k not in RESERVED}
    write_json(Path(folder) / CONFIG_FILE, {**header(class_name), **body})


def save_file_atomic(tensors: Mapping[str, torch.Tensor], file: Path) -> None:
    """One safetensors file, appearing whole under its final name or not at all."""
    tmp = file.with_name(f".{file.name}.tmp")
    save_tensors({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, tmp)
    tmp.replace(file)


def write_folder(
    path: str | os.PathLike,
    class_name: str,
    config: Mapping,
    tensors: Mapping[str, Mapping],
    force: bool = False,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``config.json`` and one ``<name>.safetensors`` per entry of ``tensors`` into ``path`` atomically.

    Missing parent folders are created (as diffusers' ``save_pretrained`` does); an existing ``path`` is
    refused unless ``force``. ``extra(tmp)`` may add files (a grid, samples) before the folder appears.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in config.items() if k not in RESERVED}
    with atomic_dir(path, force) as tmp:
        for name, group in tensors.items():
            group = {k: v.detach().to("cpu").contiguous() for k, v in group.items()}
            save_tensors(group, tmp / f"{name}.safetensors", metadata={"gendistill": class_name})
        write_json(tmp / CONFIG_FILE, {**header(class_name), **body})
        if extra is not None:
            extra(tmp)
    return path
