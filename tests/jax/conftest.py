"""JAX tests: compiled runs in this process keep no persistent compilation cache (tests stay hermetic)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_compilation_cache(monkeypatch):
    monkeypatch.setenv("GAUSSRL_JAX_CACHE_DIR", "")
