"""Optimiser helpers of the torch agents: Adam, gradient clipping and soft target updates.

Each is torch's public API: ``torch.optim.Adam(fused=True)`` steps every parameter in one
kernel (about three times faster than ``foreach=True`` for the agents' small networks on one CPU
thread; see ``benchmarks/results/tried.md``), and user-registered optimizer hooks run as usual.
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
        A ``torch.optim.Adam``.
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
    torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True)


def soft_update(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor], polyak: float) -> None:
    """``target <- target + polyak * (source - target)`` for every pair.

    Args:
        targets: Target parameters (updated in place).
        sources: Source parameters, matching ``targets`` in order and shape.
        polyak: Interpolation factor in (0, 1].
    """
    with torch.no_grad():
        for target, source in zip(targets, sources, strict=True):
            target.lerp_(source, polyak)
