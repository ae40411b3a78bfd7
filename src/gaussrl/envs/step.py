"""The backend-free vector step that non-torch agents observe (see :mod:`gaussrl.trainer.backends`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
