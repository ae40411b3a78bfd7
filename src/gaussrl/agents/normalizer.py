"""Running normalisation statistics shared by every backend's agents (NumPy, float64; no backend import).

``fold_batch`` is Chan et al.'s parallel update of a running mean and variance; the torch and
Warp scalers keep their statistics in NumPy and call it, then normalise on their own device
with ``clip((x - mean) / std, -NORMALIZED_CLIP, NORMALIZED_CLIP)``, ``std >= STD_FLOOR``.
"""

from __future__ import annotations

import numpy as np

from gaussrl.agents.normalization import batch_moments
from gaussrl.core.running import NORMALIZED_CLIP, STD_FLOOR, merge_moments

__all__ = ["NORMALIZED_CLIP", "STD_FLOOR", "floored_std", "fold_batch"]


def fold_batch(mean: np.ndarray, var: np.ndarray, count: np.ndarray, data: np.ndarray) -> None:
    """Fold a batch into running statistics, in place (Chan, Golub and LeVeque, 1979).

    Args:
        mean: Running mean, shape (F,), float64; updated in place.
        var: Running (population) variance, shape (F,), float64; updated in place.
        count: Samples seen so far, a 0-d float64 array; updated in place.
        data: The batch, any shape whose last axis is F.
    """
    data = np.asarray(data).reshape(-1, mean.shape[0]).astype(np.float64)
    new_mean, new_var, total = merge_moments((mean, var, float(count)), batch_moments(data))
    mean[:], var[:], count[...] = new_mean, new_var, total


def floored_std(var: np.ndarray) -> np.ndarray:
    """The standard deviation a scaler divides by: ``max(sqrt(var), STD_FLOOR)``.

    Args:
        var: Running variance, float64.

    Returns:
        Same shape, float64.
    """
    std: np.ndarray = np.maximum(np.sqrt(var), STD_FLOOR)
    return std
