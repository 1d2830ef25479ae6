"""The package's import graph points downward: a wing imports only the layers below it, so it has no cycles
and a reader can learn the package from the bottom up."""

import ast

import pytest

from .conftest import REPO

PACKAGE = REPO / "src" / "subtask_distill"
# Lowest first. A module may import modules of strictly lower layers only.
LAYERS = [
    {"io", "runtime", "study"},
    {"artifacts"},
    {"data", "models"},
    {"methods"},
    {"layer_check"},
    {"config"},
    {"provenance", "cli", "analysis"},
    {"training", "reporting"},
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}


def wing_of(path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_wings(path) -> set[str]:
    """The package's top-level modules and sub-packages that ``path`` imports (absolute or relative)."""
    package = list(path.relative_to(PACKAGE).parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            target = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            names = target[:1] or [alias.name for alias in node.names]
        elif node.module and node.module.split(".")[0] == "subtask_distill":
            names = node.module.split(".")[1:2] or [alias.name for alias in node.names]
        else:
            continue
        out.update(names)
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    assert {wing_of(p) for p in MODULES} <= set(LAYER_OF), "add the new module or wing to LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward(path):
    wing = wing_of(path)
    upward = {w for w in imported_wings(path) - {wing} if LAYER_OF.get(w, -1) >= LAYER_OF[wing]}
    assert not upward, f"{wing} (layer {LAYER_OF[wing]}) imports {sorted(upward)}"
