"""The backend-free vector step that non-torch agents observe (see :mod:`gaussrl.trainer.backends`).

Also the environment options and error that a trainer names without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from gaussrl.core.errors import GaussrlError

Vectorization = Literal["sync", "async"]
NonFinite = Literal["stop", "skip"]


class NonFiniteDataError(GaussrlError, FloatingPointError):
    """NaN or infinity from an environment (observations, rewards) or in a training loss."""


def episode_seed(seed: int, env_index: int, episode: int) -> int:
    """The reset seed of one episode of one sub-environment.

    Args:
        seed: The run's seed.
        env_index: Index of the sub-environment.
        episode: Index of the episode within that sub-environment.

    Returns:
        A 31-bit seed, independent across the three arguments (``numpy.random.SeedSequence``).
    """
    return int(np.random.SeedSequence([seed, env_index, episode]).generate_state(1)[0] >> 1)


@dataclass
class ArrayStep:
    """One vector step as NumPy arrays of shape (N, ...), the NumPy twin of :class:`gaussrl.envs.gymnasium.Step`.

    Attributes:
        observations: Next observations (the first of the next episode where one ended).
        rewards: Shape (N, 1).
        terminated: Shape (N, 1), bool: no bootstrap.
        truncated: Shape (N, 1), bool: cut by a time limit (bootstrap).
        final_observations: The observations the episodes ended on.
    """

    observations: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_observations: np.ndarray
