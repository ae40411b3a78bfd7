"""Shared fixtures: the backend parameterization of the contract suite."""

from __future__ import annotations

import pytest

from tests.contract.adapters import load

BACKENDS = ("torch", "jax", "warp")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend's contract adapter, skipped with a reason where its packages are missing."""
    return load(request.param)
