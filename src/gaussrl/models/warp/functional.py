"""Pure Gaussian functions for Warp arrays: the formulas of :mod:`gaussrl.core.reference`, as kernel launches."""

from __future__ import annotations

import warp as wp

from gaussrl.core.spec import GaussianSpec, Reduction
from gaussrl.models.warp.kernels import (
    REDUCTION_CODES,
    kl_kernel,
    log_prob_kernel,
    reduce_kernel,
    unary_kernel,
)


def _rows(x: wp.array) -> tuple[wp.array, int]:
    """A 2-D view of ``x`` and whether it has one row per sample (1) or one shared row (0)."""
    view = x.reshape((1, x.shape[0])) if x.ndim == 1 else x
    return view, int(view.shape[0] != 1)


def _empty(shape: tuple[int, ...], like: wp.array, *sources: wp.array) -> wp.array:
    # With gradients whenever an input has them: a wp.Tape may be recording, and Warp has no
    # public way to ask.
    grad = any(s.requires_grad for s in (like, *sources))
    return wp.empty(shape, dtype=like.dtype, device=like.device, requires_grad=grad)


def gaussian_log_prob(x: wp.array, mean: wp.array, log_std: wp.array) -> wp.array:
    """Per-dimension log-density of a diagonal Normal (one launch).

    Args:
        x: Points, shape (N, A).
        mean: Shape (N, A).
        log_std: Shape (A,), (1, A) or (N, A); used as is.

    Returns:
        Shape (N, A).
    """
    view, per_row = _rows(log_std)
    out = _empty(mean.shape, mean, x, log_std)
    kernel = log_prob_kernel(mean.dtype)
    wp.launch(kernel, dim=mean.shape, inputs=[x, mean, view, per_row], outputs=[out], device=mean.device)
    return out


def _unary(x: wp.array, op: int) -> wp.array:
    view, _ = _rows(x)
    out = _empty(x.shape, x)
    wp.launch(unary_kernel(x.dtype), dim=view.shape, inputs=[view, op], outputs=[_rows(out)[0]], device=x.device)
    return out


def gaussian_entropy(log_std: wp.array) -> wp.array:
    """Per-dimension entropy ``1/2 + log(sqrt(2 pi)) + log_std`` (one launch).

    Args:
        log_std: Shape (A,) or (N, A).

    Returns:
        Same shape.
    """
    return _unary(log_std, 0)


def tanh_log_det(pre_tanh: wp.array) -> wp.array:
    """``log(1 - tanh(u)^2)`` as ``2 (log 2 - u - softplus(-2u))``, finite for any finite ``u`` (one launch).

    Args:
        pre_tanh: Shape (A,) or (N, A).

    Returns:
        Same shape.
    """
    return _unary(pre_tanh, 2)


def reduce_log_prob(log_prob: wp.array, reduction: Reduction) -> wp.array:
    """Reduce per-dimension log-densities over the last axis, keeping it (one launch).

    Compatibility: ``"prod"`` multiplies the per-dimension log-densities, as the
    specification's backends do; it is not a log-density of anything.

    Args:
        log_prob: Shape (N, A).
        reduction: One of ``"mean"``, ``"sum"``, ``"prod"``, ``"none"``.

    Returns:
        Shape (N, 1), or ``log_prob`` itself for ``"none"``.
    """
    GaussianSpec(reduction=reduction)
    if reduction == "none":
        return log_prob
    out = _empty((log_prob.shape[0], 1), log_prob)
    kernel = reduce_kernel(log_prob.shape[1], log_prob.dtype)
    code = REDUCTION_CODES[reduction]
    wp.launch(kernel, dim=log_prob.shape[0], inputs=[log_prob, code], outputs=[out], device=log_prob.device)
    return out


def gaussian_kl(
    mean_p: wp.array,
    log_std_p: wp.array,
    mean_q: wp.array,
    log_std_q: wp.array,
    reduction: Reduction = "sum",
) -> wp.array:
    """Exact KL(p || q) between diagonal Normals, reduced like the log-prob (two launches, one for "none").

    Squashing both with the same tanh map leaves the KL unchanged (it is a bijection).

    Args:
        mean_p: Shape (N, A).
        log_std_p: Shape (A,), (1, A) or (N, A).
        mean_q: Shape (N, A).
        log_std_q: Shape (A,), (1, A) or (N, A).
        reduction: As for the log-prob.

    Returns:
        Shape (N, 1), or (N, A) for ``"none"``.
    """
    (view_p, row_p), (view_q, row_q) = _rows(log_std_p), _rows(log_std_q)
    out = _empty(mean_p.shape, mean_p, log_std_p, mean_q, log_std_q)
    inputs = [mean_p, view_p, mean_q, view_q, wp.vec2i(row_p, row_q)]
    wp.launch(kl_kernel(mean_p.dtype), dim=mean_p.shape, inputs=inputs, outputs=[out], device=mean_p.device)
    return reduce_log_prob(out, reduction)
