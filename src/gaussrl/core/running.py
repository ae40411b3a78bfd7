"""Running mean and variance: the update every backend's observation and value normalisers share.

The functions use only arithmetic operators, so the same code runs on NumPy arrays, torch tensors
and traced JAX arrays (inside ``jax.jit``).
"""

from __future__ import annotations

from typing import Any

NORMALIZED_CLIP = 5.0
"""Normalised values are clipped to +-5 standard deviations, as skrl's RunningStandardScaler does."""
STD_FLOOR = 1e-8
"""Smallest standard deviation a normaliser divides by."""

Moments = tuple[Any, Any, Any]


def merge_moments(running: Moments, batch: Moments) -> Moments:
    """Fold a batch's moments into running ones (Chan et al., 1979, the parallel variance update).

    ``M2 = var n + batch_var m + delta^2 n m / (n + m)`` with ``delta = batch_mean - mean``.

    Args:
        running: ``(mean (F,), population variance (F,), count)`` folded in so far.
        batch: The batch's ``(mean (F,), population variance (ddof 0) (F,), count > 0)``.

    Returns:
        The new ``(mean, variance, count)``.
    """
    mean, var, count = running
    batch_mean, batch_var, batch_count = batch
    total = count + batch_count
    delta = batch_mean - mean
    new_var = (var * count + batch_var * batch_count + delta * delta * (count * batch_count / total)) / total
    return mean + delta * (batch_count / total), new_var, total
