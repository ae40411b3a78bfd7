"""Pure functions for ``jax.numpy`` arrays: the formulas of :mod:`gaussrl.core.reference`, and a key stream's step."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.core.reference import LOG_2, LOG_SQRT_2PI
from gaussrl.core.spec import Reduction


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Per-dimension log-density of a diagonal Normal.

    Args:
        x: Points, shape (N, A).
        mean: Shape (N, A).
        log_std: Shape (A,) or (N, A).

    Returns:
        Shape (N, A).
    """
    z = (x - mean) * jnp.exp(-log_std)
    return -0.5 * z * z - log_std - LOG_SQRT_2PI


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Per-dimension entropy ``1/2 + log(sqrt(2 pi)) + log_std``.

    Args:
        log_std: Any shape.

    Returns:
        Same shape.
    """
    return log_std + (0.5 + LOG_SQRT_2PI)


def tanh_log_det(pre_tanh: jax.Array) -> jax.Array:
    """``log(1 - tanh(u)^2)`` as ``2 (log 2 - u - softplus(-2u))``, finite for any finite ``u``.

    Args:
        pre_tanh: Any shape.

    Returns:
        Same shape.
    """
    return 2.0 * (LOG_2 - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def clamp(x: jax.Array, low: float, high: float) -> jax.Array:
    """``jnp.clip(x, low, high)`` with gradient 1 on the closed interval ``[low, high]`` and 0 outside.

    As ``torch.clamp``; ``jnp.clip``'s gradient is 1/2 on a bound, so the backends would disagree
    there. Only the derivative rule differs: the compiled forward is ``jnp.clip``'s.

    Args:
        x: Any shape.
        low: Lower bound.
        high: Upper bound.

    Returns:
        Same shape.
    """
    return jnp.clip(x, low, high)


@clamp.defjvp
def _clamp_jvp(
    low: float, high: float, primals: tuple[jax.Array], tangents: tuple[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    (x,), (dx,) = primals, tangents
    return clamp(x, low, high), jnp.where((x >= low) & (x <= high), dx, jnp.zeros_like(dx))


def reduce_log_prob(log_prob: jax.Array, reduction: Reduction) -> jax.Array:
    """Reduce per-dimension log-densities over the last axis, keeping it.

    Compatibility: ``"prod"`` multiplies the per-dimension log-densities, as the
    specification's backends do.

    Args:
        log_prob: Shape (N, A).
        reduction: One of ``"mean"``, ``"sum"``, ``"prod"``, ``"none"``.

    Returns:
        Shape (N, 1), or (N, A) for ``"none"``.
    """
    if reduction == "sum":
        return jnp.sum(log_prob, axis=-1, keepdims=True)
    if reduction == "none":
        return log_prob
    if reduction == "mean":
        return jnp.mean(log_prob, axis=-1, keepdims=True)
    return jnp.prod(log_prob, axis=-1, keepdims=True)


def gaussian_kl(
    mean_p: jax.Array,
    log_std_p: jax.Array,
    mean_q: jax.Array,
    log_std_q: jax.Array,
    reduction: Reduction = "sum",
) -> jax.Array:
    """Exact KL(p || q) between diagonal Normals, reduced like the log-prob.

    Squashing both with the same tanh map leaves the KL unchanged (it is a bijection).

    Args:
        mean_p: Shape (N, A).
        log_std_p: Shape (A,) or (N, A).
        mean_q: Shape (N, A).
        log_std_q: Shape (A,) or (N, A).
        reduction: As for the log-prob.

    Returns:
        Shape (N, 1), or (N, A) for ``"none"``.
    """
    ratio = jnp.exp(2.0 * (log_std_p - log_std_q))
    delta = (mean_p - mean_q) * jnp.exp(-log_std_q)
    return reduce_log_prob(log_std_q - log_std_p + 0.5 * (ratio + delta * delta) - 0.5, reduction)


@functools.partial(jax.jit, inline=True)
def next_key_data(data: jax.Array) -> jax.Array:
    """The key after ``data`` in a model's sampling stream: the last word plus one, carried into the one before.

    Counter-based generators (Philox, Threefry) give independent streams for distinct keys (Salmon
    et al., 2011, "Parallel random numbers: as easy as 1, 2, 3"); hashing a new key each call
    (``split``, ``fold_in``) costs XLA:CPU a few more kernels, a quarter of a bare forward at batch 1.

    Args:
        data: Raw key words (``jax.random.key_data``), shape (W,) uint32, W >= 2.

    Returns:
        The next key's words.
    """
    step = np.zeros(data.shape[-1], np.uint32)
    step[-1] = 1
    stepped = data + step
    return stepped + jnp.where(stepped[-1:] == 0, np.roll(step, -1), np.uint32(0))
