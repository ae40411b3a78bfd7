"""Float64 NumPy reference formulas that every backend must agree with.

These are the oracle side of the contract suite and are themselves checked against
``scipy.stats`` and closed forms in ``tests/reference``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from gaussrl.core.spec import GaussianPlan, Reduction

Array = npt.NDArray[Any]

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
LOG_2 = math.log(2.0)


def log_std_floor(dtype: Any) -> float:
    """Smallest log-std used by every backend, whatever ``clip_log_std`` says.

    At ``log(tiny) / 4`` (about -21.8 in float32, -177 in float64) the variance, its inverse
    and the inverse squared are all normal numbers, so samples, log-densities and their
    gradients stay finite for any action within ``sqrt(max) * std`` of the mean. The
    default clamp of -20 lies above the float32 floor, so the floor never changes it.

    Args:
        dtype: A NumPy floating dtype (or its name).

    Returns:
        The floor, as a Python float.
    """
    return math.log(float(np.finfo(np.dtype(dtype)).tiny)) / 4.0


def clamp_log_std(log_std: Array, plan: GaussianPlan) -> Array:
    """Clamp to the plan's bounds, then floor at :func:`log_std_floor` of the array's dtype.

    Args:
        log_std: Shape (A,) or (N, A).
        plan: The resolved options.

    Returns:
        Same shape as ``log_std``.
    """
    low = max(plan.min_log_std, log_std_floor(log_std.dtype))
    return np.asarray(np.clip(log_std, low, plan.max_log_std))


def gaussian_log_prob(x: Array, mean: Array, log_std: Array) -> Array:
    """Per-dimension log-density of a diagonal Normal.

    Args:
        x: Points, shape (N, A).
        mean: Shape (N, A).
        log_std: Shape (A,) or (N, A); used as is (no ``log(exp(.))``).

    Returns:
        Shape (N, A).
    """
    z: Array = (x - mean) * np.exp(-log_std)
    return -0.5 * z * z - log_std - LOG_SQRT_2PI


def gaussian_entropy(log_std: Array) -> Array:
    """Per-dimension differential entropy of a Normal: ``1/2 + log(sqrt(2 pi)) + log_std``.

    Args:
        log_std: Any shape.

    Returns:
        Same shape as ``log_std``.
    """
    return 0.5 + LOG_SQRT_2PI + log_std


def tanh_log_det(pre_tanh: Array) -> Array:
    """``log(1 - tanh(u)^2)`` in the stable form ``2 (log 2 - u - softplus(-2u))``.

    Args:
        pre_tanh: Any shape.

    Returns:
        Same shape; finite for any finite input.
    """
    return 2.0 * (LOG_2 - pre_tanh - np.logaddexp(0.0, -2.0 * pre_tanh))


def reduce_log_prob(log_prob: Array, reduction: Reduction) -> Array:
    """Reduce per-dimension log-densities over the action axis.

    Compatibility: ``"prod"`` is the product of the per-dimension log-densities, as the
    specification's backends compute it; it is not a log-density of anything.

    Args:
        log_prob: Shape (N, A).
        reduction: ``"sum"`` gives the joint log-density; ``"none"`` returns the input.

    Returns:
        Shape (N, 1), or (N, A) for ``"none"``.
    """
    if reduction == "none":
        return log_prob
    if reduction == "sum":
        return np.asarray(np.sum(log_prob, axis=-1, keepdims=True))
    if reduction == "mean":
        return np.asarray(np.mean(log_prob, axis=-1, keepdims=True))
    return np.asarray(np.prod(log_prob, axis=-1, keepdims=True))


def gaussian_kl(mean_p: Array, log_std_p: Array, mean_q: Array, log_std_q: Array) -> Array:
    """Per-dimension KL(p || q) between two Normals (closed form).

    ``log s_q - log s_p + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``. The KL between two
    tanh-squashed Gaussians equals that of their base Gaussians (the squash is a bijection).

    Args:
        mean_p: Shape (N, A).
        log_std_p: Shape (A,) or (N, A).
        mean_q: Shape (N, A).
        log_std_q: Shape (A,) or (N, A).

    Returns:
        Shape (N, A).
    """
    ratio: Array = np.exp(2.0 * (log_std_p - log_std_q))
    delta: Array = (mean_p - mean_q) * np.exp(-log_std_q)
    kl: Array = log_std_q - log_std_p + 0.5 * (ratio + delta * delta) - 0.5
    return kl


def squash(pre_tanh: Array, plan: GaussianPlan) -> Array:
    """Map pre-squash values onto the action bounds: ``center + scale * tanh(u)``.

    Args:
        pre_tanh: Shape (N, A).
        plan: The resolved options.

    Returns:
        Shape (N, A).
    """
    return plan.squash_center + plan.squash_scale * np.tanh(pre_tanh)


def unsquash(actions: Array, plan: GaussianPlan) -> Array:
    """Invert :func:`squash`, clamping ``tanh(u)`` to ``[-1 + eps, 1 - eps]`` of the dtype.

    Args:
        actions: Shape (N, A), inside the bounds.
        plan: The resolved options.

    Returns:
        Pre-squash values, finite, shape (N, A).
    """
    eps = np.finfo(actions.dtype).eps
    y = (actions - plan.squash_center) / plan.squash_scale
    return np.asarray(np.arctanh(np.clip(y, -1.0 + eps, 1.0 - eps)))


def act(
    mean: Array,
    log_std: Array,
    plan: GaussianPlan,
    noise: Array,
    taken_actions: Array | None = None,
) -> tuple[Array, dict[str, Array]]:
    """The whole Gaussian head: what ``GaussianMixin.act`` returns, given the network's outputs.

    As in the specification, a fresh reparameterized sample is always returned; the log-density
    scores ``taken_actions`` when given, else the returned (possibly clipped) sample.

    Args:
        mean: Network mean, shape (N, A).
        log_std: Shape (A,) or (N, A).
        plan: The resolved options.
        noise: Standard-normal draw, shape (N, A).
        taken_actions: Actions to score instead of the sample, shape (N, A).

    Returns:
        ``(actions, {"log_prob", "log_std", "mean_actions"})`` as the mixins return them.
    """
    log_std = clamp_log_std(log_std, plan)
    if plan.spec.clip_mean_actions:
        mean = np.clip(mean, plan.clip.low, plan.clip.high)
    pre_tanh: Array = mean + np.exp(log_std) * noise
    actions: Array
    if plan.squash == "none":
        actions = np.clip(pre_tanh, plan.clip.low, plan.clip.high) if plan.spec.clip_actions else pre_tanh
        scored = actions if taken_actions is None else taken_actions
        log_prob = gaussian_log_prob(scored, mean, log_std)
        mean_actions = mean
    else:
        actions = squash(pre_tanh, plan)
        scored = pre_tanh if taken_actions is None else unsquash(taken_actions, plan)
        log_prob = gaussian_log_prob(scored, mean, log_std) - tanh_log_det(scored) - np.log(plan.squash_scale)
        mean_actions = squash(mean, plan)
    outputs = {"log_prob": reduce_log_prob(log_prob, plan.spec.reduction), "log_std": log_std}
    outputs["mean_actions"] = mean_actions
    return actions, outputs
