"""Optimiser helpers of the torch agents: a fused Adam, gradient clipping and soft target updates.

On one CPU thread with small networks, the cost of a gradient step is mostly per-operation
overhead, so each helper issues as few torch operations as it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

FUSED_DEVICES = ("cpu", "cuda")
"""Devices with a fused (single-kernel) Adam in torch."""


def adam(parameters: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where torch has one (CPU, CUDA), else multi-tensor.

    Args:
        parameters: Parameters to optimise (all on one device).
        lr: Learning rate.

    Returns:
        The optimiser.
    """
    parameters = list(parameters)
    device = parameters[0].device.type if parameters else "cpu"
    if device in FUSED_DEVICES and all(p.dtype == torch.float32 for p in parameters):
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    return torch.optim.Adam(parameters, lr=lr, foreach=True)


def clip_grad_norm(parameters: Sequence[torch.Tensor], max_norm: float) -> None:
    """Scale the gradients so that their global 2-norm is at most ``max_norm`` (multi-tensor).

    Args:
        parameters: Parameters whose ``.grad`` to clip (those without one are skipped).
        max_norm: Largest allowed norm.
    """
    # torch.nn.utils.clip_grad_norm_'s arithmetic, without its per-call grouping by device and dtype.
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))


def soft_update(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor], polyak: float) -> None:
    """``target <- target + polyak * (source - target)`` for every pair, as one multi-tensor op.

    Args:
        targets: Target parameters (updated in place).
        sources: Source parameters, matching ``targets`` in order and shape.
        polyak: Interpolation factor in (0, 1].
    """
    with torch.no_grad():
        torch._foreach_lerp_(list(targets), list(sources), polyak)
