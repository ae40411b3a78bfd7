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
from types import FrameType, TracebackType
from typing import Any

from gaussrl.envs.gymnasium import NonFiniteDataError

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
