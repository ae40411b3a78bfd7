"""Run directories (torch checkpoints): never train into another run's files; checkable up front; chosen by step.

A new run refuses a directory that already holds a run (its message names ``--resume`` and
``--force``); ``--force`` deletes that run's files first (only the files gaussrl writes, nothing
else in the directory). The run directory and its ``checkpoints/`` are created and checked for
writability before any training starts.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaussrl.core.errors import GaussrlError
from gaussrl.io.atomic import check_writable
from gaussrl.io.checkpoint import (
    CheckpointError,
    checkpoint_step,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    verify_checkpoint,
)

if TYPE_CHECKING:
    import torch

CHECKPOINTS = "checkpoints"
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "learning_curve.png", CHECKPOINTS, "tensorboard", "wandb")
"""What gaussrl writes into a run directory; a directory holding any of them holds a run."""


class RunDirectoryError(GaussrlError, OSError):
    """A run directory that cannot be used: another run's, a file, or not writable."""


def run_files(run_dir: str | Path) -> list[str]:
    """The names of gaussrl's run files present in a directory.

    Args:
        run_dir: The directory.

    Returns:
        The names found, in :data:`RUN_FILES` order; empty folders are not counted.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        return []
    return [name for name in RUN_FILES if (folder / name).exists() and not _empty_dir(folder / name)]


def _empty_dir(path: Path) -> bool:
    # An empty checkpoints/ is what a run that failed before training leaves: it holds nothing to protect.
    return path.is_dir() and not any(path.iterdir())


def prepare_run_dir(run_dir: str | Path, *, resume: bool, force: bool) -> None:
    """Create the run directory and its checkpoint directory, refusing another run's and checking writability.

    Args:
        run_dir: The run directory.
        resume: The run continues the run already in ``run_dir``.
        force: For a new run: delete the run files already in ``run_dir``.

    Raises:
        RunDirectoryError: If ``run_dir`` is a file, holds another run (new run without ``force``),
            or the directories cannot be created or written.
    """
    folder = Path(run_dir)
    quoted = shlex.quote(str(folder))
    if folder.exists() and not folder.is_dir():
        raise RunDirectoryError(f"the run directory {quoted} is a file; pass --out naming a directory.")
    found = [] if resume else run_files(folder)
    if found and not force:
        raise RunDirectoryError(
            f"{quoted} already holds a run ({', '.join(found)}); continue it with --resume {quoted}, "
            f"start over in it with --force (deletes those files), or pass another --out."
        )
    for name in found:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for directory in (folder, folder / CHECKPOINTS):
        try:
            check_writable(directory)
        except OSError as error:
            reason = error.strerror or str(error)
            raise RunDirectoryError(
                f"cannot write to {shlex.quote(str(directory))} ({reason}); make it writable or pass another --out."
            ) from None


def _intact_steps(paths: list[Path]) -> list[int]:
    steps = []
    for path in paths:
        try:
            verify_checkpoint(path)
        except CheckpointError:
            continue
        steps.append(checkpoint_step(path))
    return steps


def load_run_checkpoint(
    run_dir: str | Path, step: int | None, *, device: str | torch.device, command: str
) -> tuple[Any, dict[str, Any], int]:
    """Load a run's checkpoint of ``step`` (None: the newest), with a way out when the newest is corrupt.

    Args:
        run_dir: The run directory.
        step: The checkpoint's step, or None for the newest.
        device: Device to load the tensors to.
        command: The command that loads it (``"gaussrl eval DIR"``), for the hint at an older checkpoint.

    Returns:
        The state, the metadata and the checkpoint's step.

    Raises:
        CheckpointError: If the checkpoint is missing or corrupt; for a corrupt newest checkpoint
            the message lists the intact older ones and the command that loads one of them.
    """
    folder = Path(run_dir) / CHECKPOINTS
    path = find_checkpoint(folder, step)
    try:
        state, meta = load_checkpoint(path, device=device)
    except CheckpointError as error:
        if step is not None:
            raise
        intact = _intact_steps(list_checkpoints(folder)[:-1])
        if not intact:
            raise CheckpointError(f"{error} No intact older checkpoint is left in {str(folder)!r}.") from None
        listed = ", ".join(str(s) for s in sorted(intact))
        raise CheckpointError(
            f"{error} Intact older checkpoints: steps {listed}; load the newest of them with "
            f"`{command} --checkpoint {intact[-1]}`."
        ) from None
    return state, meta, checkpoint_step(path)
