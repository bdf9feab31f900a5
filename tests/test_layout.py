"""The package layout follows the data: design -> model -> sampling -> results, no cycles.

Only imports at module level count (an import inside a function or under ``TYPE_CHECKING``
runs after every module is loaded, so it cannot make a cycle at import time).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hierreg"

# what each subpackage may import from hierreg at module level (besides itself)
ALLOWED = {
    "design": set(),
    "model": {"design"},
    "sampling": {"design", "model"},
    "results": {"design", "model", "schema", "parameters"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hierreg"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hierreg"))
    return found


MODULES = {_module_name(p): _top_level_imports(p) for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_subpackage_imports_only_the_steps_before_it(package):
    wrong = {
        module: sorted(t for t in targets if _layer(t) not in ALLOWED[package] | {package})
        for module, targets in MODULES.items()
        if _layer(module) == package
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_there_are_no_import_cycles():
    graph = {m: {t for t in targets if t in MODULES and t != m} for m, targets in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_only_one_module_imports_formulae_and_one_uses_nutpie_internals():
    formulae_users = sorted(
        m
        for m, imports in _all_imports().items()
        if any(i.split(".")[0] == "formulae" for i in imports)
    )
    assert formulae_users == ["hierreg.design._formulae"]
    nutpie_internals = sorted(
        m for m, imports in _all_imports().items() if "nutpie.compile_pymc" in imports
    )
    assert nutpie_internals == ["hierreg.sampling.nutpie_compile"]


def _all_imports() -> dict[str, set[str]]:
    """Every module each module imports, wherever the import statement is."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        out[_module_name(path)] = found
    return out


def test_the_pytensor_free_packages_stay_free_of_it():
    """``hierreg`` imports sampling.compile_cache before PyTensor reads its settings, so the
    packages on that path must not import PyTensor or PyMC when loaded."""
    for module in ("hierreg.sampling", "hierreg.sampling.compile_cache"):
        text = _sources()[module]
        assert "import pytensor" not in text and "import pymc" not in text, module


def _sources() -> dict[str, str]:
    return {_module_name(p): p.read_text() for p in PACKAGE.rglob("*.py")}
