"""Deterministic models for Warp (value functions, Q-functions, deterministic actors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import warp as wp

from gaussrl.core.mixin import DeterministicOptions
from gaussrl.core.spaces import ActionBounds
from gaussrl.core.spec import DeterministicSpec
from gaussrl.models.warp.kernels import check_array, clip_kernel


class DeterministicMixin(DeterministicOptions):
    """Turns a ``Model`` into a deterministic one: ``act`` returns what ``compute`` returns.

    The options are those of :class:`gaussrl.core.mixin.DeterministicOptions`, the same on every backend.
    """

    check_inputs: Callable[[Mapping[str, Any]], None]
    compute: Callable[..., tuple[Any, dict[str, Any]]]
    device: Any

    def _init_deterministic(self, spec: DeterministicSpec, bounds: ActionBounds | None) -> None:
        self._deterministic = (spec, bounds)

    def act(
        self, inputs: Mapping[str, Any], *, role: str = "", requires_grad: bool = True
    ) -> tuple[wp.array, dict[str, Any]]:
        """Run ``compute`` and optionally clip its output.

        Args:
            inputs: Model inputs (Warp arrays on the model's device).
            role: Role played by the model.
            requires_grad: False for a call that no ``wp.Tape`` records: the clipped output (when
                clipping) gets no gradient array.

        Returns:
            The output (N, num_actions or 1) and the extra outputs of ``compute``.

        Raises:
            ValueError: If clipping and the output's width is not the number of actions.
        """
        self.check_inputs(inputs)
        actions, outputs = self.compute(inputs, role)
        check_array("compute()'s output", actions, self.device)
        bounds = self._deterministic[1]
        if bounds is None:
            return actions, outputs
        if actions.ndim != 2 or actions.shape[1] != bounds.low.size:
            raise ValueError(
                f"compute() returned an output of shape {tuple(actions.shape)}; clip_actions=True needs "
                f"(N, {bounds.low.size}), one column per action dimension."
            )
        values = np.stack([bounds.low, bounds.high]).astype(wp.dtype_to_numpy(actions.dtype))
        table: wp.array = wp.array(values, dtype=actions.dtype, device=actions.device)
        grad = requires_grad and actions.requires_grad
        out = wp.empty(actions.shape, dtype=actions.dtype, device=actions.device, requires_grad=grad)
        wp.launch(
            clip_kernel(actions.dtype), dim=actions.shape, inputs=[actions, table], outputs=[out], device=out.device
        )
        return out, outputs
