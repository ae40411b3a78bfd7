"""Optimiser helpers of the torch agents: a fused Adam, gradient clipping and soft target updates.

On one CPU thread with small networks, the cost of a gradient step is mostly per-operation
overhead, so each helper issues as few torch operations as it can.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

FUSED_DEVICES = ("cpu", "cuda")
"""Devices with a fused (single-kernel) Adam in torch."""


class _GroupLists(NamedTuple):
    """One parameter group's parameters with gradients and their Adam state, as the fused kernel takes them."""

    params: list[torch.Tensor]
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    max_exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]
    counts: torch.Tensor
    """The step counts of ``params`` in one tensor; ``steps`` are its elements (views)."""


class FusedAdam(torch.optim.Adam):
    """torch's Adam with ``fused=True``: the same kernel, state and ``state_dict``, stepped with less overhead.

    ``torch.optim.Optimizer.step`` wraps each call in a profiler range and hook dispatch and
    rebuilds its lists of state tensors, about 100 us per call on one CPU thread against some
    20 us for the fused kernel itself. Here the lists are built once per set of parameters with
    gradients (again after :meth:`load_state_dict`), and :meth:`step` calls the kernel directly:
    the arithmetic is torch's, bit for bit. Step hooks and closures are not supported.

    Args:
        params: Parameters to optimise (float32, on a CPU or CUDA device).
        lr: Learning rate.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        self._lists: dict[int, _GroupLists] = {}
        super().__init__(params, lr=lr, fused=True)

    def _group_lists(self, index: int, group: dict[str, Any]) -> _GroupLists:
        """Parameters with gradients and their state tensors (initialised by torch's Adam when new)."""
        params = [p for p in group["params"] if p.grad is not None]
        cached = self._lists.get(index)
        if cached is not None and len(cached.params) == len(params) and all(map(operator.is_, cached.params, params)):
            return cached
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []  # type: ignore[var-annotated]
        self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
        # The step counts become views of one tensor, so that one add_ counts every parameter's step
        # (torch's _foreach_add_ over 0-d tensors costs some 3 us per tensor on CPU).
        counts = torch.stack(steps) if steps else torch.zeros(0)
        for i, p in enumerate(params):
            self.state[p]["step"] = counts[i]
        views = [counts[i] for i in range(len(params))]
        lists = _GroupLists(params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, views, counts)
        self._lists[index] = lists
        return lists

    def step(self, closure: None = None) -> None:  # type: ignore[override]
        """One Adam step of every parameter that has a gradient.

        Args:
            closure: Not supported; must be None.

        Raises:
            TypeError: If a closure is given.
        """
        if closure is not None:
            raise TypeError("FusedAdam.step() takes no closure: compute the loss and call backward() before step().")
        for index, group in enumerate(self.param_groups):
            lists = self._group_lists(index, group)
            if not lists.params:
                continue
            beta1, beta2 = group["betas"]
            lists.counts.add_(1)
            torch._fused_adam_(
                lists.params,
                [p.grad for p in lists.params],
                lists.exp_avgs,
                lists.exp_avg_sqs,
                lists.max_exp_avg_sqs,
                lists.steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                amsgrad=group["amsgrad"],
                maximize=group["maximize"],
            )

    # torch.optim.Optimizer wraps ``step`` in its profiler range and hook calls unless it is marked as hooked.
    step.hooked = True  # type: ignore[attr-defined]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (or zero them in place with ``set_to_none=False``).

        Args:
            set_to_none: Set ``.grad`` to None rather than filling it with zeros.
        """
        if not set_to_none:
            super().zero_grad(set_to_none=False)
            return
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict`` (which replaces the state tensors, so the cached lists are dropped).

        Args:
            state_dict: As returned by ``state_dict()``.
        """
        super().load_state_dict(state_dict)
        self._lists = {}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group, as torch's Adam does.

        Args:
            param_group: The group's parameters and options.
        """
        super().add_param_group(param_group)
        self._lists = {}


def adam(parameters: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where torch has one (CPU, CUDA), else multi-tensor.

    Args:
        parameters: Parameters to optimise (all on one device).
        lr: Learning rate.

    Returns:
        The optimiser (a :class:`FusedAdam` where the fused kernel exists).
    """
    parameters = list(parameters)
    device = parameters[0].device.type if parameters else "cpu"
    # FusedAdam drives torch's private fused kernel; a torch without it gets the public optimiser.
    private_api = hasattr(torch, "_fused_adam_") and hasattr(torch.optim.Adam, "_init_group")
    if private_api and device in FUSED_DEVICES and all(p.dtype == torch.float32 for p in parameters):
        return FusedAdam(parameters, lr)
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
    if total.device.type != "cpu" or total.dtype != torch.float32:
        torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
        return
    # On CPU the coefficient is computed with float32 NumPy scalars, rounding as torch's float32 ops do
    # (add, reciprocal, multiply, clamp), without their dispatch; a factor of exactly 1 is skipped.
    f32 = np.float32
    coefficient = np.minimum(f32(1.0) / (f32(total.item()) + f32(1e-6)) * f32(max_norm), f32(1.0))
    if coefficient != 1.0:
        torch._foreach_mul_(grads, float(coefficient))


def soft_update(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor], polyak: float) -> None:
    """``target <- target + polyak * (source - target)`` for every pair, as one multi-tensor op.

    Args:
        targets: Target parameters (updated in place).
        sources: Source parameters, matching ``targets`` in order and shape.
        polyak: Interpolation factor in (0, 1].
    """
    with torch.no_grad():
        torch._foreach_lerp_(list(targets), list(sources), polyak)
