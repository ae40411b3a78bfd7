"""The metrics of a run: a JSON-lines file (rewritten atomically) and TensorBoard scalars.

Each record is one line ``{"kind": "episode"|"update"|"eval", "step": env_steps, ...}``. The file
is rewritten atomically on :meth:`MetricsLog.flush`, so it never holds a half-written line; a
resumed run keeps the records up to its checkpoint's step and drops the rest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gaussrl.io.atomic import write_text_atomic

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics file.

    Args:
        run_dir: The run directory.

    Returns:
        The records in order (empty if there is no file).
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MetricsLog:
    """Collects records, writes them to ``metrics.jsonl`` and mirrors the scalars to TensorBoard.

    Args:
        run_dir: The run directory.
        resume_step: Keep the existing records up to this step (None: start empty).
        tensorboard: Write TensorBoard event files under ``run_dir/tensorboard``.
        enabled: False: record and write nothing (the ranks other than 0 of a data-parallel run).
    """

    def __init__(
        self, run_dir: str | Path, *, resume_step: int | None = None, tensorboard: bool = True, enabled: bool = True
    ) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        if resume_step is not None and enabled:
            self.records = [r for r in read_metrics(run_dir) if r["step"] <= resume_step]
        self._lines = [json.dumps(r) for r in self.records]
        self._writer = None
        if tensorboard and enabled:
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 (tensorboard is slow to import)

            self._writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=resume_step)

    def add(self, kind: str, step: int, values: dict[str, float]) -> None:
        """Add one record and its TensorBoard scalars (``kind/name``).

        Args:
            kind: ``"episode"``, ``"update"`` or ``"eval"``.
            step: Environment steps so far.
            values: Scalars; non-finite ones are written as null.
        """
        if not self.enabled:
            return
        record: dict[str, Any] = {"kind": kind, "step": step}
        record.update({k: (float(v) if math.isfinite(v) else None) for k, v in values.items()})
        self.records.append(record)
        self._lines.append(json.dumps(record))
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{kind}/{name}", value, step)

    def flush(self) -> None:
        """Rewrite the metrics file atomically and flush TensorBoard."""
        if not self.enabled:
            return
        write_text_atomic(self.path, "".join(line + "\n" for line in self._lines))
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close TensorBoard."""
        self.flush()
        if self._writer is not None:
            self._writer.close()
