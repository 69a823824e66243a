"""The package's layers import downward only: a walk over every module's imports (lazy ones included)."""

from __future__ import annotations

import ast
from pathlib import Path

import gendistill

ROOT = Path(gendistill.__file__).parent

# lowest first; a module may import its own layer and the layers below it, never one above
LAYERS = [
    {"errors", "validate", "registry", "version", "io", "runtime", "store", "report"},  # foundations
    {"data"},
    {"models", "augment"},
    {"priors"},
    {"artifacts"},
    {"evaluate"},  # the trainer and protocol: distillation validates with them, MTT's experts train with them
    {"experts"},
    {"params", "objectives"},
    {"distill"},
    {"methods", "inversion"},
    {"bench"},  # suites run methods and protocols; only the CLI sits above
    {"cli", "__init__", "__main__"},
]


def _layer(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def _part(module: Path) -> str:
    rel = module.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def _imports(module: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "gendistill":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def test_no_module_imports_a_higher_layer() -> None:
    modules = [p for p in ROOT.rglob("*.py") if "weights" not in p.parts]
    parts = {_part(p) for p in modules}
    assert parts <= set().union(*LAYERS), f"modules outside the layer table: {parts - set().union(*LAYERS)}"
    bad = []
    for module in modules:
        here = _layer(_part(module))
        for target in _imports(module):
            if target in set().union(*LAYERS) and _layer(target) > here:
                bad.append(f"{module.relative_to(ROOT)} -> gendistill.{target}")
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(bad))
