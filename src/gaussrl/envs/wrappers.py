"""Observation wrappers, and the partially observable Pendulum they make.

``gaussrl/PendulumNoVel-v1`` is Pendulum-v1 without the angular velocity: the observation is
``(cos theta, sin theta)``, so a policy must infer the velocity from its memory (a task for the
recurrent policies).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

NO_VELOCITY_ID = "gaussrl/PendulumNoVel-v1"


class KeepObservationIndices(gymnasium.ObservationWrapper):  # type: ignore[type-arg, unused-ignore]
    """Keep only some components of a flat Box observation.

    Args:
        env: An environment with a 1-D Box observation space.
        indices: The components to keep, in order.

    Raises:
        TypeError: If the observation space is not a 1-D Box.
        ValueError: If an index is out of range.
    """

    def __init__(self, env: gymnasium.Env[Any, Any], indices: Sequence[int]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise TypeError(f"KeepObservationIndices needs a 1-D Box observation space, got {space}.")
        if not indices or any(not 0 <= i < space.shape[0] for i in indices):
            raise ValueError(f"indices={list(indices)} must be non-empty and lie in [0, {space.shape[0]}).")
        self._indices = np.asarray(indices, dtype=np.int64)
        self.observation_space = spaces.Box(
            low=space.low[self._indices],
            high=space.high[self._indices],
            dtype=space.dtype,  # type: ignore[arg-type, unused-ignore]
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Select the kept components.

        Args:
            observation: The full observation.

        Returns:
            The kept components.
        """
        return observation[self._indices]


def make_pendulum_no_velocity(**kwargs: Any) -> gymnasium.Env[Any, Any]:
    """Pendulum-v1 whose observation drops the angular velocity.

    Args:
        **kwargs: Passed to ``gymnasium.make("Pendulum-v1", ...)``.

    Returns:
        The wrapped environment, observing ``(cos theta, sin theta)``.
    """
    return KeepObservationIndices(gymnasium.make("Pendulum-v1", **kwargs), (0, 1))


def register_envs() -> None:
    """Register gaussrl's environment ids with Gymnasium (idempotent)."""
    if NO_VELOCITY_ID not in gymnasium.registry:
        gymnasium.register(id=NO_VELOCITY_ID, entry_point=make_pendulum_no_velocity)
