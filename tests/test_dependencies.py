"""Dependency directions of the package, read from the imports (ast) of every module under src/gaussrl.

core imports no backend and nothing above it; each backend's models import only core and their own
backend; io imports nothing from agents or trainer; agents do not import the trainer; the torch-only
modules of envs, trainer and io say so in their name or docstring. Lazy imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gaussrl

PACKAGE = Path(gaussrl.__file__).parent
BACKENDS = {
    "torch": ("torch", "safetensors.torch"),
    "jax": ("jax", "flax", "optax", "safetensors.flax"),
    "warp": ("warp", "warp_nn"),
}
ALL_BACKEND_PACKAGES = tuple(name for names in BACKENDS.values() for name in names)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """Every module ``path`` (the module named ``module``) imports, absolute, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (module or _module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if base.startswith("gaussrl"))
    return found


MODULES = {_module_name(p): (p, _imports(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _gaussrl_imports(module: str) -> set[str]:
    return {name for name in MODULES[module][1] if name == "gaussrl" or name.startswith("gaussrl.")}


def _backend_imports(module: str, packages: tuple[str, ...]) -> set[str]:
    return {name for name in MODULES[module][1] if any(name == p or name.startswith(p + ".") for p in packages)}


def _in(layer: str) -> list[str]:
    return [m for m in MODULES if _layer(m) == layer]


def test_the_scan_sees_the_package():
    assert {"gaussrl.core.errors", "gaussrl.models.torch.gaussian", "gaussrl.io.export", "gaussrl.trainer.cli"} <= set(
        MODULES
    )
    assert "gaussrl.core.mixin" in _gaussrl_imports("gaussrl.models.torch.gaussian")
    assert "torch" in _backend_imports("gaussrl.models.torch.gaussian", ALL_BACKEND_PACKAGES)


def test_core_imports_no_backend_and_nothing_above_it():
    for module in _in("core"):
        above = {name for name in _gaussrl_imports(module) if not name.startswith("gaussrl.core")}
        assert not above, f"{module} imports {sorted(above)}; core may import only core"
        backends = _backend_imports(module, ALL_BACKEND_PACKAGES)
        assert not backends, f"{module} imports {sorted(backends)}; core imports no backend"


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_models_import_only_core_and_their_own_backend(backend):
    own = f"gaussrl.models.{backend}"
    modules = [m for m in MODULES if m == own or m.startswith(own + ".")]
    assert modules
    for module in modules:
        outside = {
            name
            for name in _gaussrl_imports(module)
            if not name.startswith(("gaussrl.core", own)) and name not in {"gaussrl", "gaussrl.models"}
        }
        assert not outside, f"{module} imports {sorted(outside)}; models import only gaussrl.core and {own}"
        others = _backend_imports(module, tuple(p for p in ALL_BACKEND_PACKAGES if p not in BACKENDS[backend]))
        assert not others, f"{module} imports {sorted(others)}, another backend's packages"


def _assert_not_importing(layer: str, forbidden: tuple[str, ...]) -> None:
    for module in _in(layer):
        bad = {name for name in _gaussrl_imports(module) if name.startswith(forbidden)}
        assert not bad, f"{module} imports {sorted(bad)}; {layer} must not import {', '.join(forbidden)}"


def test_io_imports_nothing_from_agents_or_trainer():
    _assert_not_importing("io", ("gaussrl.agents", "gaussrl.trainer"))


def test_agents_do_not_import_the_trainer():
    _assert_not_importing("agents", ("gaussrl.trainer",))


@pytest.mark.parametrize("layer", ["envs", "trainer", "io"])
def test_torch_only_modules_say_so(layer):
    for module in _in(layer):
        path, imports = MODULES[module]
        if "torch" not in {name.split(".")[0] for name in imports}:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert "torch" in module.lower() or "torch" in docstring.lower(), (
            f"{module} imports torch; say so in its module name or docstring (e.g. 'torch only')"
        )


def test_the_rules_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..trainer.loop import Trainer\n    import torch\n")
    found = _imports(bad, "gaussrl.io.bad")
    assert {"gaussrl.trainer.loop", "gaussrl.trainer.loop.Trainer", "torch"} <= found
    assert {n for n in found if n.startswith(("gaussrl.agents", "gaussrl.trainer"))}  # what the io rule rejects
