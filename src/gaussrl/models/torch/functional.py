"""Pure Gaussian functions for PyTorch tensors: the formulas of :mod:`gaussrl.core.reference`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gaussrl.core.reference import LOG_2, LOG_SQRT_2PI
from gaussrl.core.spec import Reduction


def standard_normal(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard-normal noise of ``like``'s shape, dtype and device, drawn from ``generator``.

    Args:
        like: Any tensor.
        generator: A generator on ``like``'s device.

    Returns:
        A new tensor.
    """
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def standard_log_prob(
    z: torch.Tensor, log_std: torch.Tensor, offset: float | torch.Tensor = -LOG_SQRT_2PI
) -> torch.Tensor:
    """Per-dimension log-density ``-z^2/2 - log_std - log(sqrt(2 pi))`` of a point ``z`` stds from the mean.

    For a fresh sample ``mean + std * noise``, ``z`` is the noise itself.

    Args:
        z: Standardised points ``(x - mean) / std``, shape (N, A).
        log_std: Shape (A,) or (N, A).
        offset: ``-log(sqrt(2 pi))``; as a 0-d tensor of ``log_std``'s dtype the subtraction skips
            torch's wrapping of a Python number (a few microseconds at batch 1).

    Returns:
        Shape (N, A).
    """
    return torch.addcmul(offset - log_std, z, z, value=-0.5)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Per-dimension log-density of a diagonal Normal.

    Args:
        x: Points, shape (N, A).
        mean: Shape (N, A).
        log_std: Shape (A,) or (N, A).

    Returns:
        Shape (N, A).
    """
    return standard_log_prob((x - mean) * torch.exp(-log_std), log_std)


def gaussian_entropy(log_std: torch.Tensor, constant: float | torch.Tensor = 0.5 + LOG_SQRT_2PI) -> torch.Tensor:
    """Per-dimension entropy ``1/2 + log(sqrt(2 pi)) + log_std``.

    Args:
        log_std: Any shape.
        constant: ``1/2 + log(sqrt(2 pi))``, a number or a 0-d tensor of ``log_std``'s dtype.

    Returns:
        Same shape.
    """
    return log_std + constant


def tanh_log_det(pre_tanh: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)^2)`` as ``2 (log 2 - u - softplus(-2u))``, finite for any finite ``u``.

    Args:
        pre_tanh: Any shape.

    Returns:
        Same shape.
    """
    return 2.0 * (LOG_2 - pre_tanh - F.softplus(-2.0 * pre_tanh))


def reduce_log_prob(log_prob: torch.Tensor, reduction: Reduction) -> torch.Tensor:
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
        return log_prob.sum(-1, keepdim=True)
    if reduction == "none":
        return log_prob
    if reduction == "mean":
        return log_prob.mean(-1, keepdim=True)
    return log_prob.prod(-1, keepdim=True)


def gaussian_kl(
    mean_p: torch.Tensor,
    log_std_p: torch.Tensor,
    mean_q: torch.Tensor,
    log_std_q: torch.Tensor,
    reduction: Reduction = "sum",
) -> torch.Tensor:
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
    ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    delta = (mean_p - mean_q) * torch.exp(-log_std_q)
    return reduce_log_prob(log_std_q - log_std_p + 0.5 * (ratio + delta * delta) - 0.5, reduction)
