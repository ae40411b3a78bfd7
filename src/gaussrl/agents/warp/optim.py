"""Adam with global gradient-norm clipping as Warp kernels, with a state dict for checkpoints.

warp-nn's ``Adam`` clips as ``g * max_norm / norm`` above the bound and has no state dict; this
one clips as the torch agents do (``g * min(max_norm / (norm + 1e-6), 1)``, after
``torch.nn.utils.clip_grad_norm_``) and saves its moments, step count and learning rate, so that
a resumed run continues exactly. Every launch of a step is recorded once (``record_cmd``) and
replayed; the learning rate and step count live in device arrays, so a step never reads back to
the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import warp as wp

from gaussrl.agents.warp.kernels import MODULE

f32 = wp.float32
BETAS = (0.9, 0.999)
EPS = 1e-8
"""torch.optim.Adam's defaults."""
CLIP_EPS = 1e-6
"""Added to the gradient norm before dividing, as torch.nn.utils.clip_grad_norm_ does."""


@wp.kernel(module=MODULE, enable_backward=False)
def begin_step_kernel(step: wp.array1d(dtype=f32), sum_squares: wp.array1d(dtype=f32)):
    """Count the step and reset the gradients' sum of squares."""
    step[0] = step[0] + 1.0
    sum_squares[0] = 0.0


@wp.kernel(module=MODULE, enable_backward=False)
def sum_squares_kernel(grad: wp.array1d(dtype=f32), sum_squares: wp.array1d(dtype=f32)):
    """``sum_squares[0] += sum(grad^2)``; launched over the gradient."""
    i = wp.tid()
    wp.atomic_add(sum_squares, 0, grad[i] * grad[i])


@wp.kernel(module=MODULE, enable_backward=False)
def adam_kernel(  # noqa: PLR0917 (Warp kernels take positional arguments)
    param: wp.array1d(dtype=f32),
    grad: wp.array1d(dtype=f32),
    m: wp.array1d(dtype=f32),
    v: wp.array1d(dtype=f32),
    lr: wp.array1d(dtype=f32),
    step: wp.array1d(dtype=f32),
    sum_squares: wp.array1d(dtype=f32),
    max_norm: float,
):
    """One Adam step (Kingma and Ba, 2015, Algorithm 1) of a clipped gradient; launched over the parameter."""
    i = wp.tid()
    g = grad[i]
    if max_norm > 0.0:
        g = g * wp.min(max_norm / (wp.sqrt(sum_squares[0]) + wp.static(CLIP_EPS)), 1.0)
    b1, b2 = wp.static(BETAS[0]), wp.static(BETAS[1])
    m[i] = b1 * m[i] + (1.0 - b1) * g
    v[i] = b2 * v[i] + (1.0 - b2) * g * g
    correction1 = 1.0 - wp.pow(b1, step[0])
    correction2 = 1.0 - wp.pow(b2, step[0])
    denominator = wp.sqrt(v[i]) / wp.sqrt(correction2) + wp.static(EPS)
    param[i] = param[i] - lr[0] / correction1 * m[i] / denominator


class Adam:
    """Adam over a list of float32 parameters that have gradient arrays.

    Args:
        parameters: Parameter arrays (``requires_grad=True``), all on one device.
        lr: Initial learning rate.
        max_norm: Global gradient-norm clip; 0 disables it.
    """

    def __init__(self, parameters: Sequence[wp.array], lr: float, max_norm: float = 0.0) -> None:
        self.parameters = list(parameters)
        self.device = self.parameters[0].device
        self.max_norm = float(max_norm)
        zeros = [wp.zeros(p.size, dtype=f32, device=self.device) for p in self.parameters]
        self.m, self.v = zeros, [wp.zeros(p.size, dtype=f32, device=self.device) for p in self.parameters]
        self.lr: wp.array = wp.array([lr], dtype=f32, device=self.device)
        self.step_count = wp.zeros(1, dtype=f32, device=self.device)
        self.sum_squares = wp.zeros(1, dtype=f32, device=self.device)
        self._launches = self._record()

    def _record(self) -> list[Any]:
        device, flat = self.device, [(p.flatten(), p.grad.flatten()) for p in self.parameters]
        launches = [
            wp.launch(begin_step_kernel, 1, inputs=[self.step_count, self.sum_squares], device=device, record_cmd=True)
        ]
        if self.max_norm > 0:
            launches += [
                wp.launch(sum_squares_kernel, g.size, inputs=[g, self.sum_squares], device=device, record_cmd=True)
                for _, g in flat
            ]
        for (p, g), m, v in zip(flat, self.m, self.v, strict=True):
            inputs = [p, g, m, v, self.lr, self.step_count, self.sum_squares, self.max_norm]
            launches.append(wp.launch(adam_kernel, p.size, inputs=inputs, device=device, record_cmd=True))
        return launches

    def step(self) -> None:
        """One step of every parameter with its current gradient (clipped first when ``max_norm > 0``)."""
        for launch in self._launches:
            launch.launch()

    def zero_grad(self) -> None:
        """Zero every parameter's gradient."""
        for p in self.parameters:
            p.grad.zero_()

    def set_lr(self, lr: float) -> None:
        """Set the learning rate (a host write).

        Args:
            lr: The new rate.
        """
        self.lr.fill_(lr)

    def state(self) -> dict[str, Any]:
        """Moments, step count and learning rate as NumPy arrays (copies).

        Returns:
            ``{"m": [...], "v": [...], "step": (1,), "lr": (1,)}``.
        """
        return {
            "m": [a.numpy().copy() for a in self.m],
            "v": [a.numpy().copy() for a in self.v],
            "step": self.step_count.numpy().copy(),
            "lr": self.lr.numpy().copy(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned (in place: the recorded launches stay valid).

        Args:
            state: As returned by :meth:`state`.

        Raises:
            ValueError: If the moments' sizes differ from the parameters'.
        """
        for name in ("m", "v"):
            for array, value in zip(getattr(self, name), state[name], strict=True):
                saved = np.asarray(value, np.float32).reshape(-1)
                if saved.size != array.size:
                    raise ValueError(
                        f"optimizer state {name!r} has {saved.size} values for a parameter of {array.size}; "
                        f"was the checkpoint written for other network sizes?"
                    )
                array.assign(saved)
        self.step_count.assign(np.asarray(state["step"], np.float32).reshape(1))
        self.lr.assign(np.asarray(state["lr"], np.float32).reshape(1))
