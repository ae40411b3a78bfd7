"""Backend adapters for the contract suite.

Each adapter wraps one backend behind the same NumPy-in, NumPy-out interface
(:class:`contract.adapters.base.Backend`), so that every contract test is written once.
"""

from __future__ import annotations

import importlib

import pytest

from tests.contract.adapters.base import Backend

REQUIRES = {"torch": "torch", "jax": "flax", "warp": "warp_nn"}


def load(name: str) -> Backend:
    """Import the backend's adapter, skipping (with the reason) when the backend is not installed."""
    pytest.importorskip(REQUIRES[name], reason=f"the {name} backend's packages are not installed")
    try:
        module = importlib.import_module(f"tests.contract.adapters.{name}_adapter")
    except ModuleNotFoundError as error:
        if error.name != f"tests.contract.adapters.{name}_adapter":
            raise
        pytest.skip(f"the {name} backend has no contract adapter yet")
    return module.ADAPTER
