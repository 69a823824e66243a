"""Atomic writes: a file or folder appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gendistill.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_tensors(tensors: dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file`` with ordinary permissions: it creates its files 0600, which would
    hide artifacts and priors from the other users of a shared machine."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, 0o666 & ~_umask())


def write_json(path: str | os.PathLike, obj: object) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should read like any other file
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def partial_dir(out: str | os.PathLike) -> Path:
    """``<out>.partial``: where a resumable run keeps its checkpoints until the artifact at ``out`` is written
    (the one convention that ``--resume``, ``--force`` and the refusal of a stale run all rely on)."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def check_new_dir(path: str | os.PathLike, force: bool, create_parents: bool = False) -> Path:
    """Refuse to replace an existing output folder unless ``force``; raise before any work is done.
    ``create_parents``: a missing parent folder is fine (the writer will create it)."""
    path = Path(path)
    if path.exists() and not force:
        raise UserError(f"output {path} already exists; choose another --out or pass --force to replace it")
    if path.exists() and not path.is_dir():
        raise UserError(f"output {path} exists and is not a folder; remove it or choose another --out")
    if not path.parent.exists() and not create_parents:
        raise UserError(f"parent folder {path.parent} does not exist; create it first")
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename."""
    path = check_new_dir(path, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
