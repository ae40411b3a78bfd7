"""Training progress on stderr: a tqdm bar on a terminal, periodic plain lines anywhere else.

A bar redrawn with carriage returns is unreadable in a log file or a CI log, so when the stream is
not a terminal, :class:`Progress` prints one line every ``interval_s`` seconds (and a last one at
the end) instead, e.g. ``gaussrl: step 12000/100000 (12%), 6579 steps/s, return=-150.7, eval=-159.8``.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

PLAIN_INTERVAL_S = 10.0
"""Seconds between plain progress lines."""


class Progress:
    """Progress of a run from ``initial`` to ``total`` steps.

    Args:
        total: The run's total steps.
        initial: Steps already done (a resumed run).
        enabled: False: show nothing.
        stream: Where to write (stderr by default); a bar if it is a terminal, else plain lines.
        interval_s: Seconds between plain lines.
    """

    def __init__(
        self,
        total: int,
        initial: int,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval_s: float = PLAIN_INTERVAL_S,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.steps, self.enabled = total, initial, enabled
        self.postfix: dict[str, str] = {}
        self.interval_s = interval_s
        self._start_steps, self._start = initial, time.perf_counter()
        self._last_line = self._start
        self._bar: tqdm[None] | None = None
        if enabled and self.stream.isatty():
            self._bar = tqdm(total=total, initial=initial, unit="step", file=self.stream, smoothing=0.1)

    def update(self, steps: int) -> None:
        """Advance to ``steps``.

        Args:
            steps: Environment steps so far.
        """
        if self._bar is not None:
            self._bar.update(steps - self.steps)
        self.steps = steps
        if self._bar is None and self.enabled and time.perf_counter() - self._last_line >= self.interval_s:
            self._line()

    def set_postfix(self, postfix: dict[str, str]) -> None:
        """Set the figures shown after the step count (``return``, ``eval``).

        Args:
            postfix: Name -> formatted value.
        """
        self.postfix = dict(postfix)
        if self._bar is not None:
            self._bar.set_postfix(postfix, refresh=False)

    def _line(self) -> None:
        now = time.perf_counter()
        rate = (self.steps - self._start_steps) / (now - self._start) if now > self._start else 0.0
        parts = [f"step {self.steps}/{self.total} ({100 * self.steps // max(self.total, 1)}%)", f"{rate:.0f} steps/s"]
        parts += [f"{name}={value}" for name, value in self.postfix.items()]
        print(f"gaussrl: {', '.join(parts)}", file=self.stream, flush=True)
        self._last_line = now

    def close(self) -> None:
        """Close the bar, or print the last plain line (again: a no-op)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled:
            self._line()
        self.enabled = False
