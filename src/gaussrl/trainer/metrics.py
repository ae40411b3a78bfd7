"""The metrics of a run: a JSON-lines file (rewritten atomically), TensorBoard (torch's writer) and Weights & Biases.

Each record is one line ``{"kind": "episode"|"update"|"eval", "step": env_steps, ...}`` of strict
JSON: a value that is NaN or infinite is written as ``null``. The file is rewritten atomically on
:meth:`MetricsLog.flush`, so it never holds a half-written line; a resumed run keeps the records
up to its checkpoint's step and drops the rest, so no record appears twice.

With ``wandb`` set, the scalars also go to a Weights & Biases run whose files live in
``run_dir/wandb`` (``WANDB_MODE=offline`` logs without a network; ``WANDB_PROJECT`` names the
project, "gaussrl" by default). A resumed run logs as a new W&B run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from gaussrl.core.errors import ConfigError
from gaussrl.io.atomic import write_text_atomic

METRICS_FILE = "metrics.jsonl"


def finite_or_none(value: float) -> float | None:
    """``value``, or None (JSON ``null``) when it is NaN or infinite.

    Args:
        value: A number.

    Returns:
        The number as a float, or None.
    """
    return float(value) if math.isfinite(value) else None


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


def require_wandb() -> Any:
    """The ``wandb`` module.

    Returns:
        The module.

    Raises:
        ConfigError: If the ``wandb`` package is not installed.
    """
    try:
        import wandb  # noqa: PLC0415 (optional, and slow to import)
    except ImportError:
        raise ConfigError(
            '--wandb needs the wandb package: pip install "gaussrl[wandb]" (set WANDB_MODE=offline to log without '
            "a network), or drop --wandb."
        ) from None
    return wandb


def start_wandb(run_dir: str | Path, config: dict[str, Any]) -> Any:
    """Start a Weights & Biases run that keeps its files in ``run_dir/wandb``.

    Args:
        run_dir: The run directory (its name names the W&B run).
        config: The run's configuration, recorded by W&B.

    Returns:
        The ``wandb`` run.

    Raises:
        ConfigError: If the ``wandb`` package is not installed.
    """
    wandb = require_wandb()
    (Path(run_dir) / "wandb").mkdir(parents=True, exist_ok=True)
    project = os.environ.get("WANDB_PROJECT", "gaussrl")
    return wandb.init(project=project, name=Path(run_dir).resolve().name, dir=str(Path(run_dir)), config=config)


class MetricsLog:
    """Collects records, writes them to ``metrics.jsonl`` and mirrors the scalars to TensorBoard and W&B.

    Args:
        run_dir: The run directory.
        resume_step: Keep the existing records up to this step (None: start empty).
        tensorboard: Write TensorBoard event files under ``run_dir/tensorboard``.
        wandb: Log to Weights & Biases too, with this run configuration (None: do not).
        enabled: False: record and write nothing (the ranks other than 0 of a data-parallel run).
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        resume_step: int | None = None,
        tensorboard: bool = True,
        wandb: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        if resume_step is not None and enabled:
            self.records = [r for r in read_metrics(run_dir) if r["step"] <= resume_step]
        self._lines = [json.dumps(r, allow_nan=False) for r in self.records]
        self._writer = None
        self._closed = False
        self._wandb = start_wandb(run_dir, wandb) if wandb is not None and enabled else None
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
        record.update({k: finite_or_none(v) for k, v in values.items()})
        self.records.append(record)
        self._lines.append(json.dumps(record, allow_nan=False))
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{kind}/{name}", value, step)
        if self._wandb is not None:
            self._wandb.log({f"{kind}/{name}": value for name, value in values.items()}, step=step)

    def flush(self) -> None:
        """Rewrite the metrics file atomically and flush TensorBoard."""
        if not self.enabled:
            return
        write_text_atomic(self.path, "".join(line + "\n" for line in self._lines))
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close TensorBoard and W&B (again: a no-op)."""
        if self._closed:
            return
        self.flush()
        if self._writer is not None:
            self._writer.close()
        if self._wandb is not None:
            self._wandb.finish()
        self._closed = True
