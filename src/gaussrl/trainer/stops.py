"""Why a run stops early: a signal, or learning that diverged.

While :class:`SignalFlag` is installed, the first SIGINT or SIGTERM is only recorded; the training
loop looks at it after every environment step, writes a checkpoint and raises
:class:`Interrupted`, whose ``status`` is the conventional exit status (130 for SIGINT, 143 for
SIGTERM). A second signal raises ``KeyboardInterrupt`` at once, for a user who will not wait.

NaN or infinity from the environment is caught by the environment wrapper
(``NonFiniteDataError``); in an update's losses, by :func:`check_update` (:class:`DivergenceError`).
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from gaussrl.envs.step import NonFiniteDataError
from gaussrl.io.checkpoint import checkpoint_step, list_checkpoints
from gaussrl.trainer.resume import resume_command
from gaussrl.trainer.rundir import CHECKPOINTS

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after writing a checkpoint.

    Args:
        signum: The signal.
        message: What was saved and how to resume.
    """

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def status(self) -> int:
        """The conventional exit status, 128 + the signal number."""
        return 128 + self.signum


class SignalFlag:
    """A context manager that records SIGINT and SIGTERM instead of acting on them.

    Outside the main thread (where Python cannot install handlers) it records nothing.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    @property
    def name(self) -> str:
        """The name of the signal received (``"SIGINT"``), or ``""``."""
        return signal.Signals(self.received).name if self.received is not None else ""


class DivergenceError(NonFiniteDataError):
    """NaN or infinity in a loss or in the agent's state: learning diverged."""


def check_update(update: dict[str, float], algo: str, steps: int) -> None:
    """Raise if an update's metrics (losses, temperature, ...) hold NaN or infinity.

    Args:
        update: The metrics the agent returned.
        algo: ``"ppo"`` or ``"sac"``, for the message.
        steps: Environment steps so far, for the message.

    Raises:
        DivergenceError: Naming the first non-finite metric.
    """
    for name, value in update.items():
        if not math.isfinite(value):
            raise DivergenceError(
                f"{algo.upper()}'s {name} became {value} in the update after {steps} steps "
                f"(learning diverged: try a lower learning rate or smaller rewards)"
            )


def interrupted(signals: SignalFlag, steps: int, run_dir: Path) -> Interrupted:
    """The error that ends a one-process run on a signal, after its checkpoint of step ``steps`` was written.

    Args:
        signals: The flag that recorded the signal.
        steps: Environment steps so far (the checkpoint's step).
        run_dir: The run directory, for the resume command.

    Returns:
        ``Interrupted`` saying what was saved and how to continue.
    """
    return Interrupted(
        int(signals.received or 0),
        f"{signals.name} after {steps} steps: saved checkpoint step {steps}; continue with: {resume_command(run_dir)}",
    )


def stopped(
    error: NonFiniteDataError, run_dir: Path, steps: int, checkpoint: Callable[[], object] | None
) -> NonFiniteDataError:
    """Save the state if it is still finite; the error, extended with what was saved, to stop the run with.

    Args:
        error: What went wrong.
        run_dir: The run directory.
        steps: Environment steps so far.
        checkpoint: Writes a checkpoint, raising ``DivergenceError`` for a state that is not finite;
            None when nothing may be saved (one rank of a data-parallel run stopped alone).

    Returns:
        An error of the same type, whose message ends with the checkpoint state and the resume command.
    """
    found = list_checkpoints(run_dir / CHECKPOINTS)
    newest = f"the newest checkpoint is step {checkpoint_step(found[-1])}" if found else "no checkpoint exists"
    skip = "" if isinstance(error, DivergenceError) else " (add --nonfinite skip to leave such steps out of training)"
    if checkpoint is None:
        saved, skip = f"nothing was saved (one rank of a data-parallel run stopped alone); {newest}", ""
    else:
        try:
            checkpoint()
            saved = f"saved checkpoint step {steps} (the state before it)"
        except DivergenceError:
            saved = f"the agent's state is no longer finite, so nothing was saved; {newest}"
    return type(error)(f"{error}; the run stopped and {saved}; continue with `{resume_command(run_dir)}`{skip}.")
