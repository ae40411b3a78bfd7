"""JAX tests: compiled runs in this process keep no persistent compilation cache (tests stay hermetic)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_compilation_cache(monkeypatch):
    monkeypatch.setenv("GAUSSRL_JAX_CACHE_DIR", "")


def run_script(directory: Path, source: str, argument: Path, env: dict[str, str] | None = None) -> str:
    """Run ``source`` as a fresh Python process with one path argument; it must exit 0; its last stdout line.

    For what one process cannot test twice: which modules a path imports, or XLA's device count. The
    scripts assert inside and print ``OK`` last, which the caller checks.
    """
    script = directory / "script.py"
    script.write_text(source)
    result = subprocess.run(
        [sys.executable, str(script), str(argument)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""
