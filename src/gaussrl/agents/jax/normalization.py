"""Running normalisation for the JAX agents (skrl's RunningStandardScaler), pure and usable under ``jit``.

The moment update is :func:`gaussrl.core.running.merge_moments`, shared with every backend. With
``axis_name`` (inside ``shard_map``) a batch's moments are those of its union over the devices.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.core.running import NORMALIZED_CLIP, STD_FLOOR, merge_moments


class RunningStats(NamedTuple):
    """Running mean, population variance and count of a stream of batches (float32)."""

    mean: jax.Array
    var: jax.Array
    total: jax.Array
    """Samples folded in so far (a float32 scalar)."""


def pmean(x: Any, axis_name: str | None) -> Any:
    """``x`` averaged over the device axis (``x`` itself without one)."""
    return x if axis_name is None else jax.lax.pmean(x, axis_name)  # type: ignore[no-untyped-call]


def moments(x: jax.Array, axis_name: str | None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean, population variance and count of ``x`` (B, F) over B (and over the device axis)."""
    devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)  # type: ignore[no-untyped-call]
    mean = pmean(jnp.mean(x, axis=0), axis_name)
    var = pmean(jnp.mean(jnp.square(x - mean), axis=0), axis_name)
    return mean, var, jnp.asarray(x.shape[0] * devices, jnp.float32)


def stats_init(size: int) -> RunningStats:
    """Statistics of no data: mean 0, variance 1, count 0 (normalising is then the identity)."""
    return RunningStats(jnp.zeros(size, jnp.float32), jnp.ones(size, jnp.float32), jnp.zeros((), jnp.float32))


def stats_update(stats: RunningStats, batch: jax.Array, axis_name: str | None = None) -> RunningStats:
    """Fold a batch (..., F) into the statistics (:func:`gaussrl.core.running.merge_moments`)."""
    batch_moments = moments(batch.reshape(-1, stats.mean.shape[0]), axis_name)
    return RunningStats(*merge_moments((stats.mean, stats.var, stats.total), batch_moments))


def normalize(stats: RunningStats, x: jax.Array) -> jax.Array:
    """``(x - mean) / std`` clipped to +-5, std at least 1e-8."""
    std = jnp.maximum(jnp.sqrt(stats.var), STD_FLOOR)
    return jnp.clip((x - stats.mean) / std, -NORMALIZED_CLIP, NORMALIZED_CLIP)


def mean_std(stats: RunningStats) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the std :func:`normalize` applies, as NumPy arrays (``gaussrl export``)."""
    return np.asarray(stats.mean), np.maximum(np.sqrt(np.asarray(stats.var)), STD_FLOOR)


def denormalize(stats: RunningStats, y: jax.Array) -> jax.Array:
    """``y * std + mean``, the inverse of :func:`normalize` inside the clip range."""
    return y * jnp.maximum(jnp.sqrt(stats.var), STD_FLOOR) + stats.mean
