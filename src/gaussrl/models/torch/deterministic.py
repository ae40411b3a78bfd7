"""Deterministic models for PyTorch (value functions, Q-functions, deterministic actors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from gaussrl.core.mixin import DeterministicOptions
from gaussrl.core.spaces import ActionBounds
from gaussrl.core.spec import DeterministicSpec


class DeterministicMixin(DeterministicOptions):
    """Turns a ``Model`` into a deterministic one: ``act`` returns what ``compute`` returns.

    The options are those of :class:`gaussrl.core.mixin.DeterministicOptions`, the same on every backend.
    """

    check_inputs: Callable[[Mapping[str, Any]], None]
    compute: Callable[..., tuple[Any, dict[str, Any]]]

    def _init_deterministic(self, spec: DeterministicSpec, bounds: ActionBounds | None) -> None:
        self._deterministic = (spec, bounds)

    def act(self, inputs: Mapping[str, Any], *, role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
        """Run ``compute`` and optionally clip its output.

        Args:
            inputs: Model inputs.
            role: Role played by the model.

        Returns:
            The output (N, num_actions or 1) and the extra outputs of ``compute``.
        """
        self.check_inputs(inputs)
        actions, outputs = self.compute(inputs, role)
        bounds = self._deterministic[1]
        if bounds is not None:
            low = torch.as_tensor(bounds.low, device=actions.device, dtype=actions.dtype)
            high = torch.as_tensor(bounds.high, device=actions.device, dtype=actions.dtype)
            actions = torch.clamp(actions, low, high)
        return actions, outputs
