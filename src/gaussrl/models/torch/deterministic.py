"""Deterministic models for PyTorch (value functions, Q-functions, deterministic actors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gaussrl.core.errors import Mixin, check_model_ready
from gaussrl.core.spaces import action_bounds
from gaussrl.core.spec import DeterministicSpec


class DeterministicMixin(Mixin):
    """Turns a ``Model`` into a deterministic one: ``act`` returns what ``compute`` returns.

    Args:
        clip_actions: Clip the output to the Box action bounds.
        role: Role played by the model.

    Raises:
        TypeError: If ``Model.__init__`` has not run, or ``clip_actions`` is set without a Box.
    """

    def __init__(self, *, clip_actions: bool = False, role: str = "") -> None:
        check_model_ready(self, "DeterministicMixin")
        spec = DeterministicSpec(clip_actions=clip_actions, role=role)
        bounds = action_bounds(self.action_space, "clip_actions=True") if spec.clip_actions else None
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
