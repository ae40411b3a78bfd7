"""``gaussrl plot``: the learning curve of a run as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gaussrl.core.errors import MissingRunFileError
from gaussrl.io.atomic import write_atomic
from gaussrl.trainer.metrics import read_metrics

CURVE_FILE = "learning_curve.png"


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    starts = np.arange(values.size) + 1 - counts
    means: np.ndarray = (cumulative[np.arange(values.size) + 1] - cumulative[starts]) / counts
    return means


def plot_run(run_dir: str | os.PathLike[str], *, window: int = 20) -> Path:
    """Plot episode returns (and their rolling mean) and evaluation points against environment steps.

    Args:
        run_dir: A run directory with ``metrics.jsonl``.
        window: Episodes in the rolling mean.

    Returns:
        The path of ``learning_curve.png`` in ``run_dir``.

    Raises:
        FileNotFoundError: If the run has no metrics.
    """
    import matplotlib  # noqa: PLC0415 (matplotlib is only needed here)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    records = read_metrics(Path(run_dir))
    episodes = [(r["step"], r["return"]) for r in records if r["kind"] == "episode"]
    evals = [(r["step"], r["return_mean"], r["return_std"]) for r in records if r["kind"] == "eval"]
    if not episodes and not evals:
        raise MissingRunFileError(f"no metrics in {str(run_dir)!r}: expected a metrics.jsonl written by gaussrl train.")
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    if episodes:
        steps, returns = (np.asarray(v, dtype=float) for v in zip(*episodes, strict=True))
        axes.plot(steps, returns, ".", color="tab:blue", alpha=0.25, markersize=3, label="training episode")
        axes.plot(steps, _rolling_mean(returns, window), color="tab:blue", label=f"mean of last {window}")
    if evals:
        steps, means, stds = (np.asarray(v, dtype=float) for v in zip(*evals, strict=True))
        axes.errorbar(steps, means, yerr=stds, fmt="o-", color="tab:red", capsize=3, label="evaluation (mean actions)")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("episode return")
    axes.set_title(Path(run_dir).name)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    path = Path(run_dir) / CURVE_FILE
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)
    return path
