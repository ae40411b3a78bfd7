"""Running observation/value statistics, backend-free (NumPy, float64), shared by every backend's agents.

The torch agents wrap them in :class:`gaussrl.agents.torch.memory.RunningStandardScaler`; the JAX
agents keep a :class:`RunningMoments` on the host and pass its mean and std into their compiled calls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NORMALIZED_CLIP = 5.0
"""Normalised values are clipped to +-5 standard deviations, as skrl's RunningStandardScaler does."""
STD_FLOOR = 1e-8
"""The smallest std a normaliser divides by."""


def fold_moments(
    mean: np.ndarray, var: np.ndarray, count: float, data: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fold a batch into running moments (Chan et al., 1979, the parallel variance update), in float64.

    Args:
        mean: Running mean, shape (size,).
        var: Running (population) variance, shape (size,).
        count: Samples folded so far.
        data: The batch, shape (B, size), float64.

    Returns:
        The new mean, variance and count.
    """
    n = data.shape[0]
    # np.add.reduce rather than mean()/var(): the same two-pass arithmetic without their overhead.
    batch_mean = np.add.reduce(data, 0) / n
    centered = data - batch_mean
    batch_var = np.add.reduce(centered * centered, 0) / n
    total = count + n
    delta = batch_mean - mean
    new_var = (var * count + batch_var * n + delta * delta * (count * n / total)) / total
    return mean + delta * (n / total), new_var, total


class RunningMoments:
    """Running mean and variance of a stream of batches, held in NumPy.

    Args:
        size: Number of features.
    """

    def __init__(self, size: int) -> None:
        self.mean = np.zeros(size)
        self.var = np.ones(size)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch into the statistics.

        Args:
            batch: Shape (..., size).
        """
        data = np.asarray(batch, dtype=np.float64).reshape(-1, self.mean.shape[0])
        self.mean, self.var, self.count = fold_moments(self.mean, self.var, self.count, data)

    def mean_std(self, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the std (at least :data:`STD_FLOOR`) in ``dtype``.

        Args:
            dtype: NumPy dtype of the result.

        Returns:
            Mean and std, shape (size,) each.
        """
        return self.mean.astype(dtype), np.maximum(np.sqrt(self.var), STD_FLOOR).astype(dtype)

    def state(self) -> dict[str, np.ndarray]:
        """The statistics, for a checkpoint (the torch scaler's keys).

        Returns:
            ``{"mean", "var", "count"}``, float64 arrays (copies).
        """
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.asarray(self.count)}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore statistics written by :meth:`state`.

        Args:
            state: ``{"mean", "var", "count"}``, arrays or CPU tensors.
        """
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.var = np.array(state["var"], dtype=np.float64)
        self.count = float(np.asarray(state["count"]))
