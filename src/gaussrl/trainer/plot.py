"""``gaussrl plot``: learning curves as PNGs (matplotlib, Agg backend).

One run: its episode returns, their rolling mean and its evaluations (``DIR/learning_curve.png``).
Several runs: their evaluation returns against environment steps, one line per run, in one figure.
Either can carry horizontal reference lines (``--reference NAME=VALUE``), e.g. a published result.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaussrl.core.errors import ConfigError, MissingRunFileError
from gaussrl.io.atomic import write_atomic
from gaussrl.trainer.metrics import read_metrics

CURVE_FILE = "learning_curve.png"
"""The single-run figure, written into the run directory."""
OVERLAY_FILE = "learning_curves.png"
"""The several-run figure, written into the current directory unless ``--out`` names another file."""


@dataclass(frozen=True)
class Curve:
    """The deterministic evaluations of one run, in step order.

    Args:
        label: The legend entry.
        steps: Environment steps of each evaluation, shape (E,).
        means: Mean evaluation return, shape (E,); NaN where no episode finished with finite values.
        stds: Standard deviation of the evaluation returns, shape (E,).
    """

    label: str
    steps: np.ndarray
    means: np.ndarray
    stds: np.ndarray


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise MissingRunFileError(
            f"run directory {str(run_dir)!r} does not exist; pass a directory written by gaussrl train."
        )


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def eval_curve(run_dir: str | os.PathLike[str], label: str | None = None) -> Curve:
    """The evaluation returns of a run, read from its ``metrics.jsonl``.

    Args:
        run_dir: A run directory written by ``gaussrl train``.
        label: Legend entry; None: the directory's name.

    Returns:
        The curve (a ``null`` return in the file becomes NaN).

    Raises:
        MissingRunFileError: If the directory does not exist or holds no evaluation yet.
    """
    path = Path(run_dir)
    _check_run_dir(path)
    evals = [r for r in read_metrics(path) if r["kind"] == "eval"]
    if not evals:
        raise MissingRunFileError(
            f"no evaluations in {str(path)!r}: expected eval records in a metrics.jsonl written by gaussrl train "
            "(the first comes after --eval-interval steps); wait for one or leave this run out."
        )
    return Curve(
        label=path.name if label is None else label,
        steps=np.array([r["step"] for r in evals], dtype=np.int64),
        means=np.array([_float(r["return_mean"]) for r in evals], dtype=np.float64),
        stds=np.array([_float(r["return_std"]) for r in evals], dtype=np.float64),
    )


def _run_seed(run_dir: Path) -> Any:
    try:
        return json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError):
        return None


def run_labels(run_dirs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Legend entries for runs: ``seed S`` when each run's ``config.json`` gives a different seed, else dir names.

    Args:
        run_dirs: Run directories.

    Returns:
        One label per run.
    """
    seeds = [_run_seed(Path(d)) for d in run_dirs]
    if all(isinstance(s, int) for s in seeds) and len(set(seeds)) == len(seeds):
        return [f"seed {s}" for s in seeds]
    return [Path(d).name for d in run_dirs]


def parse_reference(text: str) -> tuple[str, float]:
    """Split a ``NAME=VALUE`` reference line option.

    Args:
        text: e.g. ``"zoo=9535"``.

    Returns:
        The name and the finite value.

    Raises:
        ConfigError: If there is no ``=``, the name is empty or the value is not a finite number.
    """
    name, sep, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name.strip() or not math.isfinite(number):
        raise ConfigError(
            f"--reference {text!r} is not NAME=VALUE with a finite number; write e.g. --reference zoo=9535."
        )
    return name.strip(), number


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 (matplotlib is only needed here)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _save(plt: Any, figure: Any, axes: Any, references: Sequence[tuple[str, float]], path: Path) -> Path:
    """Draw the reference lines, label the axes and write the figure atomically."""
    for index, (name, value) in enumerate(references):
        axes.axhline(value, color="black", linestyle=("--", ":", "-.")[index % 3], linewidth=1, label=f"{name}")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("episode return")
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)
    return path


def plot_curves(
    curves: Sequence[Curve], out: str | os.PathLike[str], *, title: str, references: Sequence[tuple[str, float]] = ()
) -> Path:
    """Draw evaluation curves (one line each, a band of one standard deviation) and reference lines.

    Args:
        curves: The runs' curves.
        out: The PNG file to write (its directory is created).
        title: The figure's title.
        references: (name, return) pairs drawn as horizontal lines.

    Returns:
        The path written.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for curve in curves:
        (line,) = axes.plot(curve.steps, curve.means, "o-", markersize=3, label=curve.label)
        axes.fill_between(
            curve.steps, curve.means - curve.stds, curve.means + curve.stds, color=line.get_color(), alpha=0.15
        )
    axes.set_title(title)
    return _save(plt, figure, axes, references, Path(out))


def plot_runs(
    run_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    references: Sequence[tuple[str, float]] = (),
) -> Path:
    """Overlay the evaluation returns of several runs in one figure.

    Args:
        run_dirs: Run directories written by ``gaussrl train``.
        out: The PNG file; None: ``learning_curves.png`` in the current directory.
        references: (name, return) pairs drawn as horizontal lines.

    Returns:
        The path written.

    Raises:
        ConfigError: If ``run_dirs`` is empty.
        MissingRunFileError: If a directory does not exist or holds no evaluation.
    """
    if not run_dirs:
        raise ConfigError("no run directory to plot; name one or more, e.g. gaussrl plot runs/ppo-Pendulum-v1-seed0.")
    curves = [eval_curve(d, label) for d, label in zip(run_dirs, run_labels(run_dirs), strict=True)]
    names = sorted({Path(d).name for d in run_dirs})
    title = names[0] if len(names) == 1 else f"{len(curves)} runs"
    return plot_curves(curves, OVERLAY_FILE if out is None else out, title=title, references=references)


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    starts = np.arange(values.size) + 1 - counts
    means: np.ndarray = (cumulative[np.arange(values.size) + 1] - cumulative[starts]) / counts
    return means


def plot_run(
    run_dir: str | os.PathLike[str],
    *,
    window: int = 20,
    out: str | os.PathLike[str] | None = None,
    references: Sequence[tuple[str, float]] = (),
) -> Path:
    """Plot episode returns (and their rolling mean) and evaluation points against environment steps.

    Args:
        run_dir: A run directory with ``metrics.jsonl``.
        window: Episodes in the rolling mean.
        out: The PNG file; None: ``learning_curve.png`` in ``run_dir``.
        references: (name, return) pairs drawn as horizontal lines.

    Returns:
        The path written.

    Raises:
        MissingRunFileError: If the directory does not exist or the run has no metrics.
    """
    _check_run_dir(Path(run_dir))
    records = read_metrics(Path(run_dir))
    episodes = [(r["step"], _float(r["return"])) for r in records if r["kind"] == "episode"]
    evals = [(r["step"], _float(r["return_mean"]), _float(r["return_std"])) for r in records if r["kind"] == "eval"]
    if not episodes and not evals:
        raise MissingRunFileError(f"no metrics in {str(run_dir)!r}: expected a metrics.jsonl written by gaussrl train.")
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    if episodes:
        steps, returns = (np.asarray(v, dtype=float) for v in zip(*episodes, strict=True))
        axes.plot(steps, returns, ".", color="tab:blue", alpha=0.25, markersize=3, label="training episode")
        axes.plot(steps, _rolling_mean(returns, window), color="tab:blue", label=f"mean of last {window}")
    if evals:
        steps, means, stds = (np.asarray(v, dtype=float) for v in zip(*evals, strict=True))
        axes.errorbar(steps, means, yerr=stds, fmt="o-", color="tab:red", capsize=3, label="evaluation (mean actions)")
    axes.set_title(Path(run_dir).name)
    return _save(plt, figure, axes, references, Path(run_dir) / CURVE_FILE if out is None else Path(out))
