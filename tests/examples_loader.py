"""Import an example file by path (examples/ is not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(backend: str, name: str) -> ModuleType:
    path = EXAMPLES / backend / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{backend}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
