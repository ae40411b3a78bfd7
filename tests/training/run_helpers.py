"""Helpers of the run-directory, resume, non-finite and signal tests: short CLI runs, in or out of process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gaussrl
from gaussrl.trainer.cli import main

SRC = str(Path(gaussrl.__file__).resolve().parents[1])

TINY = [
    "--num-envs",
    "2",
    "--no-progress",
    "--no-tensorboard",
    "--eval-episodes",
    "2",
    "--eval-interval",
    "0",
    "--ppo.rollouts",
    "64",
    "--ppo.mini-batches",
    "2",
    "--ppo.learning-epochs",
    "1",
    "--ppo.hidden-sizes",
    "16",
    "16",
]
"""Options of a fast PPO run: 2 environments, an update every 128 steps, evaluation only at the end."""


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI in process; assert exit status 2 and one line ``gaussrl: error: ...``; return it."""
    capsys.readouterr()
    status = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("gaussrl: error: "), captured.err
    return lines[0]


def spawn(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``python -m gaussrl ARGV`` with this checkout's gaussrl in a process group of its own."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "gaussrl", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def records(run_dir: Path) -> list[dict]:
    """The records of a run's metrics.jsonl, parsed as strict JSON (a NaN literal fails)."""
    text = (run_dir / "metrics.jsonl").read_text()
    return [strict_json(line) for line in text.splitlines()]


def strict_json(text: str):
    """Parse JSON, rejecting the NaN/Infinity literals that Python's json accepts by default."""

    def reject(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def checkpoint_steps(run_dir: Path) -> list[int]:
    """The steps of the checkpoints in a run directory, sorted."""
    return sorted(int(path.stem.split("_")[1]) for path in (run_dir / "checkpoints").glob("step_*.json"))
