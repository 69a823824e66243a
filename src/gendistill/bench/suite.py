"""A benchmark suite: the cells to run (method x dataset x IPC x seed x budget) and the protocols that
evaluate them, read from YAML and checked before any work starts.

.. code-block:: yaml

    suite: protocols              # the suite's name: cell names are unique within it
    dataset: fashion-mnist        # default of every cell (a cell may name another)
    protocols: [paper, eccv24]    # evaluation protocols, from gendistill.evaluate.recipe.PRESETS
    defaults: {models: [convnet], augment: dsa, seed: 0}
    cells:
      - {method: random, ipc: 10}
      - {method: dm, ipc: 10, budget: {minutes: 5}}
      - {method: full, budget: {epochs: 5}}
    grid:                         # each entry expands to the product of its lists
      - {method: [dc, dsa], ipc: [1, 10], budget: [{iterations: 20}]}
    import: [../results/methods.json]   # committed results to carry into the store, not recomputed
    store: ../results/store.jsonl # where results go (default: <suite>.jsonl beside the suite)
    workdir: ../runs/bench        # where cells' artifacts go (default: runs/bench)

Paths in a suite are relative to the suite file.

A cell's ``method`` is a distillation method (``gendistill.methods.METHODS``), a selection baseline
(``random``, ``herding``), ``full`` (all training images: the upper bound HLR needs) or another builder
of ``bench.builders.BUILDERS`` (``diffusion-inversion``: invert real images, sample IPC per class). Its ``budget`` is
``iterations`` or ``minutes`` of distillation (both: whichever ends first; none: the method's published
count), or ``epochs`` of training for ``full``. ``augment`` is what every protocol trains with unless the
protocol pins its own: ``dsa`` (the default, one augmentation for every cell so their numbers compare),
``none``, a DSA strategy, or ``method`` (what the set's method recommends). ``eval_epochs`` overrides the
protocols' training epochs (e.g. the 300-epoch rows of DM's time-to-accuracy curve).

``committed: FILE:KEY`` says the cell was already measured, by a ``benchmarks/run_*.py`` script before
the store existed, as entry KEY of ``results/FILE`` (which the suite must ``import``): the cell is then
satisfied by that imported record and not recomputed. Delete the line to measure the cell afresh here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from gendistill.errors import UserError
from gendistill.io import load_yaml
from gendistill.validate import MAX_EPOCHS, MAX_ITERATIONS, MAX_MINUTES, check_fields, limit
from gendistill.version import __version__

TOP_KEYS = {
    "suite",
    "description",
    "dataset",
    "data_dir",
    "protocols",
    "defaults",
    "cells",
    "grid",
    "import",
    "store",
    "workdir",
}


@dataclass(frozen=True)
class Budget:
    """How much work a cell gets: distillation iterations and/or minutes, or training epochs (``full``)."""

    iterations: int | None = limit(None, ge=1, le=MAX_ITERATIONS)
    minutes: float | None = limit(None, gt=0, le=MAX_MINUTES)
    epochs: int | None = limit(None, ge=1, le=MAX_EPOCHS)

    def __post_init__(self) -> None:
        check_fields(self)

    def label(self) -> str:
        parts = [
            f"{self.iterations}it" if self.iterations else "",
            f"{self.minutes:g}min" if self.minutes else "",
            f"{self.epochs}ep" if self.epochs else "",
        ]
        return "+".join(p for p in parts if p) or "paper"


@dataclass(frozen=True)
class Cell:
    """One thing to make and evaluate. ``param``: the parameterisation's config (``{name: hglad, ...}``);
    ``options``: further ``RunOptions`` fields (``model``, ``precision``, ``objective``, ``regularisers``);
    ``runs``: evaluation runs per protocol (None: each protocol's own)."""

    name: str
    method: str
    dataset: str
    ipc: int | None = None
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    param: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    protocols: tuple[str, ...] = ("paper",)
    models: tuple[str, ...] = ("convnet",)
    runs: int | None = None
    augment: str = "dsa"
    eval_epochs: int | None = None
    committed: str | None = None

    def budget_label(self) -> str:
        return "-" if self.method in ("random", "herding") else self.budget.label()

    def config(self) -> dict:
        """Everything that decides the cell's result, without its name (nor ``committed``: where an earlier
        measurement of it lives is provenance, not config). Fields added after the store's first results
        (``eval_epochs``) enter only when set, so the keys of cells that do not use them stay as they were."""
        out = asdict(self)
        del out["name"], out["committed"]
        if out["eval_epochs"] is None:
            del out["eval_epochs"]
        return out

    def make_config(self) -> dict:
        """What decides the training data alone (not how it is evaluated): shared by every protocol."""
        evaluation = ("protocols", "models", "runs", "augment", "eval_epochs")
        return {k: v for k, v in self.config().items() if k not in evaluation}

    def key(self, what: dict | None = None) -> str:
        """The cache key: the hash of a config and the code version (a new release re-runs every cell)."""
        body = json.dumps(
            {"config": what if what is not None else self.make_config(), "code": __version__},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def eval_key(self, protocol: str) -> str:
        evaluation = {k: v for k, v in self.config().items() if k in ("models", "runs", "augment", "eval_epochs")}
        return self.key({"make": self.make_config(), "protocol": protocol, **evaluation})


@dataclass(frozen=True)
class Suite:
    name: str
    cells: tuple[Cell, ...]
    protocols: tuple[str, ...]
    source: Path | None = None
    data_dir: str | None = None
    description: str = ""
    imports: tuple[Path, ...] = ()
    store: Path = Path("bench.jsonl")
    workdir: Path = Path("runs/bench")

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise UserError(f"suite {self.name!r} has no cell {name!r}; it has {', '.join(c.name for c in self.cells)}")


def _check_keys(what: str, given: dict, allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise UserError(f"{what}: unknown key(s) {unknown}; valid: {sorted(allowed)}")


def _budget(raw: object, where: str) -> Budget:
    if raw is None:
        return Budget()
    if not isinstance(raw, dict):
        raise UserError(f"{where}: budget must be a mapping like {{iterations: 100}} or {{minutes: 5}}, got {raw!r}")
    _check_keys(f"{where} budget", raw, {f.name for f in fields(Budget)})
    for k, v in raw.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise UserError(f"{where}: budget {k} must be a positive number, got {v!r}")
    try:
        return Budget(**{k: (float(v) if k == "minutes" else int(v)) for k, v in raw.items()})
    except (UserError, OverflowError, ValueError) as e:
        raise UserError(f"{where}: budget {e}") from None


def _known_method(method: object, where: str) -> str:
    from gendistill.bench.builders import BUILDERS
    from gendistill.methods import METHODS

    if not isinstance(method, str):
        raise UserError(f"{where}: method must be a name, got {method!r}")
    valid = sorted(set(METHODS) | set(BUILDERS) - {"distill"})  # "distill" is the builder behind METHODS
    if method not in valid:
        raise UserError(f"{where}: unknown method {method!r}; valid: {', '.join(valid)}")
    return method


def _make_cell(raw: dict, defaults: dict, where: str, protocols: tuple[str, ...]) -> Cell:
    from gendistill.data import DATASETS
    from gendistill.evaluate.recipe import PRESETS

    allowed = {f.name for f in fields(Cell)}
    _check_keys(where, raw, allowed)
    merged = {**defaults, **raw}
    if "method" not in merged:
        raise UserError(f"{where}: no method given")
    method = _known_method(merged["method"], where)
    DATASETS.get(str(merged.get("dataset")))
    budget = _budget(merged.get("budget"), where)
    ipc = merged.get("ipc")
    if method == "full":
        if ipc is not None or budget.iterations or budget.minutes:
            raise UserError(f"{where}: a full-data cell takes budget {{epochs: N}} and no ipc")
        budget = budget if budget.epochs else Budget(epochs=5)
    else:
        if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
            raise UserError(f"{where}: ipc must be a whole number >= 1, got {ipc!r}")
        if budget.epochs:
            raise UserError(f"{where}: budget epochs is for full-data cells; use iterations or minutes")
        if method in ("random", "herding") and (budget.iterations or budget.minutes):
            raise UserError(f"{where}: a {method} subset takes no budget")
    cell_protocols = tuple(merged.get("protocols") or protocols)
    for p in cell_protocols:
        PRESETS.get(p)
    models = merged.get("models", ["convnet"])
    models = (models,) if isinstance(models, str) else tuple(models)
    runs = merged.get("runs")
    if runs is not None and (not isinstance(runs, int) or runs < 1):
        raise UserError(f"{where}: runs must be a whole number >= 1, got {runs!r}")
    for k in ("param", "options"):
        if not isinstance(merged.get(k, {}), dict):
            raise UserError(f"{where}: {k} must be a mapping")
    eval_epochs = merged.get("eval_epochs")
    if eval_epochs is not None and (
        not isinstance(eval_epochs, int) or isinstance(eval_epochs, bool) or eval_epochs < 1 or method == "full"
    ):
        raise UserError(
            f"{where}: eval_epochs must be a whole number >= 1 (full-data cells: budget epochs), got {eval_epochs!r}"
        )
    committed = merged.get("committed")
    if committed is not None and (not isinstance(committed, str) or ":" not in committed):
        raise UserError(f"{where}: committed must be FILE:KEY, e.g. methods.json:dm-ipc10, got {committed!r}")
    name = merged.get("name") or default_name(method, ipc, budget, int(merged.get("seed", 0)))
    seed = int(merged.get("seed", 0))
    return Cell(
        name=str(name),
        method=method,
        dataset=str(merged["dataset"]),
        ipc=ipc,
        seed=seed,
        budget=budget,
        param=dict(merged.get("param", {})),
        options=dict(merged.get("options", {})),
        protocols=cell_protocols,
        models=models,
        runs=runs,
        augment=str(merged.get("augment", "dsa")),
        eval_epochs=eval_epochs,
        committed=committed,
    )


def _check_committed(cells: list[Cell], imports: tuple[Path, ...], where: str) -> None:
    """A cell's ``committed: FILE:KEY`` must name an entry of a file the suite imports."""
    files = {p.name: p for p in imports}
    entries: dict[str, dict] = {}
    for c in cells:
        if c.committed is None:
            continue
        name, key = c.committed.split(":", 1)
        if name not in files:
            raise UserError(
                f"{where}: cell {c.name!r} is committed in {name}, which the suite does not import; add it to 'import:'"
            )
        if name not in entries:
            entries[name] = json.loads(files[name].read_text()).get("entries", {})
        if key not in entries[name]:
            raise UserError(f"{where}: cell {c.name!r}: {name} has no entry {key!r}")


def default_name(method: str, ipc: int | None, budget: Budget, seed: int) -> str:
    parts = [method] + ([f"ipc{ipc}"] if ipc is not None else [])
    if budget.iterations or budget.minutes or (method == "full" and budget.epochs):
        parts.append(budget.label())
    return "-".join(parts + ([f"seed{seed}"] if seed else []))


def _expand(grid: dict, where: str) -> list[dict]:
    if not isinstance(grid, dict):
        raise UserError(f"{where} must be a mapping of keys to lists")
    keys = list(grid)
    values = [v if isinstance(v, list) else [v] for v in grid.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def parse_suite(raw: object, source: Path | None = None) -> Suite:
    """A suite from its YAML mapping; every problem is one :class:`UserError` naming the key."""
    from gendistill.evaluate.recipe import PRESETS

    where = str(source) if source else "suite"
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping with suite, cells and protocols")
    _check_keys(where, raw, TOP_KEYS)
    name = raw.get("suite") or (source.stem if source else None)
    if not name:
        raise UserError(f"{where}: no suite name; add 'suite: NAME'")
    protocols = raw.get("protocols", ["paper"])
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    for p in protocols:
        PRESETS.get(p)
    defaults = {"dataset": raw.get("dataset", "fashion-mnist"), **(raw.get("defaults") or {})}
    _check_keys(f"{where} defaults", defaults, {f.name for f in fields(Cell)} - {"name"})
    entries = [(c, f"{where} cell {i + 1}") for i, c in enumerate(raw.get("cells") or [])]
    for i, g in enumerate(raw.get("grid") or []):
        entries += [(c, f"{where} grid {i + 1}") for c in _expand(g, f"{where} grid {i + 1}")]
    cells = []
    for entry, at in entries:
        if not isinstance(entry, dict):
            raise UserError(f"{at} must be a mapping like {{method: dm, ipc: 10}}")
        cells.append(_make_cell(entry, defaults, at, protocols))
    base = source.parent if source else Path.cwd()
    cells = [_resolve_paths(c, base) for c in cells]
    seen: set[str] = set()
    for c in cells:
        if c.name in seen:
            raise UserError(f"{where}: two cells are named {c.name!r}; give one a distinct 'name:'")
        seen.add(c.name)
    imports = tuple((base / p).resolve() for p in raw.get("import") or [])
    for p in imports:
        if not p.is_file():
            raise UserError(f"{where}: import {p} does not exist")
    _check_committed(cells, imports, where)
    data_dir = raw.get("data_dir")
    store = Path(os.path.normpath(base / raw["store"])) if raw.get("store") else base / f"{name}.jsonl"
    workdir = Path(os.path.normpath(base / raw["workdir"])) if raw.get("workdir") else Path("runs/bench")
    return Suite(
        str(name),
        tuple(cells),
        protocols,
        source,
        os.fspath(base / data_dir) if data_dir else None,
        str(raw.get("description", "")),
        imports,
        store,
        workdir,
    )


def _resolve_paths(cell: Cell, base: Path) -> Cell:
    """MTT's ``options.objective.experts`` is a path: relative to the suite file, like every path in it."""
    objective = dict(cell.options.get("objective") or {})
    if isinstance(objective.get("experts"), str):
        objective["experts"] = os.path.normpath(base / objective["experts"])
        return dataclasses.replace(cell, options={**cell.options, "objective": objective})
    return cell


def load_suite(path: str | os.PathLike) -> Suite:
    import yaml

    path = Path(path)
    try:
        raw = load_yaml(path.read_text(), f"suite {path}")
    except OSError as e:
        raise UserError(f"cannot read suite {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"suite {path} is not a text file; pass a suite's YAML file") from None
    except yaml.YAMLError as e:
        raise UserError(f"suite {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    return parse_suite(raw, path)
