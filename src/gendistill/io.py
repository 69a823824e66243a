"""Atomic writes: a file or folder appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import json
import math
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


def json_safe(obj: object) -> object:
    """``obj`` with every NaN and infinity replaced by None (JSON's null). Python writes them as the bare
    words NaN and Infinity, which are not JSON: other readers (jq, browsers, pandas' strict mode) refuse the
    whole file."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def dumps(obj: object, **kwargs: object) -> str:
    """``json.dumps`` of :func:`json_safe` ``(obj)``, refusing non-finite numbers anywhere they remain."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)  # type: ignore[arg-type]


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as JSON (non-finite numbers as null) in one rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should read like any other file
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps(obj, indent=2, sort_keys=False) + "\n")
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


MIN_FREE_BYTES = 1 << 20  # refuse to start a run whose output disk has less than this free


def check_writable(path: str | os.PathLike, needed: int = MIN_FREE_BYTES) -> None:
    """Refuse, before any work, an output ``path`` whose folder cannot be written or whose disk lacks
    ``needed`` bytes (an unknown size: :data:`MIN_FREE_BYTES`). The nearest folder that exists is checked,
    since the writer creates the missing ones."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: {folder} is a file, not a folder; choose another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if _read_only(folder) else "is not writable by this user"
        raise UserError(f"cannot write {path}: {folder} {why}; choose an output path on a writable disk")
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UserError(
            f"cannot write {path}: the disk holding {folder} has {free / 2**20:.2f} MiB free and this "
            f"needs about {needed / 2**20:.2f} MiB; free some space or choose another output path"
        )


def _read_only(folder: Path) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


def check_new_dir(path: str | os.PathLike, force: bool, create_parents: bool = False, flag: str = "--out") -> Path:
    """Refuse to replace an existing output folder unless ``force``, or one that cannot be written; raise
    before any work is done. ``create_parents``: a missing parent folder is fine (the writer creates it).
    ``flag``: the option that named the folder, for the message."""
    path = Path(path)
    if path.exists() and not force:
        raise UserError(f"output {path} already exists; choose another {flag} or pass --force to replace it")
    if path.exists() and not path.is_dir():
        raise UserError(f"output {path} exists and is not a folder; remove it or choose another {flag}")
    if not path.parent.exists() and not create_parents:
        raise UserError(f"parent folder {path.parent} does not exist; create it first")
    check_writable(path)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename. Missing parent
    folders are created, as every command that writes one does."""
    path = check_new_dir(path, force, create_parents=True)
    path.parent.mkdir(parents=True, exist_ok=True)
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


MAX_YAML_VALUES = 100_000  # suites and recipes hold hundreds; a "billion laughs" file stands for billions


def load_yaml(text: str, what: str) -> object:
    """``yaml.safe_load`` that refuses a document standing for more than :data:`MAX_YAML_VALUES` values once
    its aliases are expanded: nine nested lines of ten aliases each stand for a billion values, and anything
    that walks the result (a check, a hash, ``--list``) would take that long."""
    import yaml

    data = yaml.safe_load(text)
    size = _expanded_size(data, {})
    if size > MAX_YAML_VALUES:
        raise UserError(
            f"{what} stands for {size:,} values once its aliases (*name) are expanded, more than "
            f"{MAX_YAML_VALUES:,}; write the values out"
        )
    return data


def _expanded_size(obj: object, memo: dict[int, int]) -> int:
    """The number of values in ``obj`` with every shared list or mapping counted each time it is used,
    computed once per distinct object (so in time linear in the document, not in its expansion)."""
    if not isinstance(obj, (list, dict)):
        return 1
    if id(obj) not in memo:
        children = obj.values() if isinstance(obj, dict) else obj
        memo[id(obj)] = 1 + sum(_expanded_size(child, memo) for child in children)
    return memo[id(obj)]
