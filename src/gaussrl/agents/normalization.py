"""Running observation statistics on the host (NumPy, float64), for agents whose normaliser lives outside jit.

The update is :func:`gaussrl.core.running.merge_moments`, shared with the torch scaler
(:class:`gaussrl.agents.torch.memory.RunningStandardScaler`) and the JAX core's ``stats_update``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussrl.core.running import STD_FLOOR, merge_moments


def batch_moments(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, population variance and count of a batch (B, size), two-pass.

    Args:
        data: Shape (B, size), float64.

    Returns:
        ``(mean (size,), variance (size,), B)``.
    """
    n = data.shape[0]
    # np.add.reduce rather than mean()/var(): the same two-pass arithmetic without their overhead.
    mean = np.add.reduce(data, 0) / n
    centered = data - mean
    return mean, np.add.reduce(centered * centered, 0) / n, float(n)


class RunningMoments:
    """Running mean and variance of a stream of batches, held in NumPy.

    Args:
        size: Number of features.
    """

    def __init__(self, size: int) -> None:
        self.mean = np.zeros(size)
        self.var = np.ones(size)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch into the statistics.

        Args:
            batch: Shape (..., size).
        """
        data = np.asarray(batch, dtype=np.float64).reshape(-1, self.mean.shape[0])
        self.mean, self.var, self.count = merge_moments((self.mean, self.var, self.count), batch_moments(data))

    def mean_std(self, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the std (at least :data:`~gaussrl.core.running.STD_FLOOR`) in ``dtype``.

        Args:
            dtype: NumPy dtype of the result.

        Returns:
            Mean and std, shape (size,) each.
        """
        return self.mean.astype(dtype), np.maximum(np.sqrt(self.var), STD_FLOOR).astype(dtype)

    def state(self) -> dict[str, np.ndarray]:
        """The statistics, for a checkpoint (the torch scaler's keys).

        Returns:
            ``{"mean", "var", "count"}``, float64 arrays (copies).
        """
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.asarray(self.count)}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore statistics written by :meth:`state`.

        Args:
            state: ``{"mean", "var", "count"}``, arrays or CPU tensors.
        """
        self.mean = np.asarray(state["mean"]).astype(np.float64)  # a copy; np.array(tensor, dtype) warns
        self.var = np.asarray(state["var"]).astype(np.float64)
        self.count = float(np.asarray(state["count"]))


RETURN_CLIP = 10.0
"""Normalised rewards are clipped to +-this (SB3's VecNormalize ``clip_reward``)."""


class ReturnNormalizer:
    """Rewards divided by the running std of each environment's discounted return, clipped to +-10.

    Each environment keeps its discounted return ``G <- discount * G + r`` (reset to 0 where an
    episode ended); the running variance of those returns over every environment and step sets
    the scale, ``r / max(std(G), STD_FLOOR)``. Dividing by the std of the return rather than of
    the reward keeps the value targets near unit scale whatever the horizon (Engstrom et al.,
    2020, "Implementation matters in deep policy gradients"). Rewards are not centred: that
    would change which behaviour is optimal when episodes can end early.

    Args:
        num_envs: Parallel environments.
        discount_factor: The agent's discount.
    """

    def __init__(self, num_envs: int, discount_factor: float) -> None:
        self.discount_factor = discount_factor
        self.returns = np.zeros(num_envs)
        self.moments = RunningMoments(1)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Fold this step's rewards into the returns and their statistics; return the scaled rewards.

        Args:
            rewards: Shape (N, 1) or (N,).
            dones: Same shape, bool: the episode ended at this step (its return restarts at 0).

        Returns:
            The scaled rewards, same shape and dtype as ``rewards``.
        """
        flat = np.asarray(rewards, dtype=np.float64).reshape(-1)
        self.returns = self.returns * self.discount_factor + flat
        self.fold(self.returns[:, None])
        std = max(float(np.sqrt(self.moments.var[0])), STD_FLOOR)
        scaled = np.clip(np.asarray(rewards) / std, -RETURN_CLIP, RETURN_CLIP).astype(np.asarray(rewards).dtype)
        self.returns[np.asarray(dones).reshape(-1)] = 0.0
        return scaled

    def fold(self, returns: np.ndarray) -> None:
        """Fold this step's discounted returns into the statistics that set the scale.

        Args:
            returns: Shape (N, 1), float64.
        """
        self.moments.update(returns)

    def state(self) -> dict[str, np.ndarray]:
        """The returns in progress and their statistics, for a checkpoint.

        Returns:
            ``{"returns", "mean", "var", "count"}``, float64 arrays (copies).
        """
        return {"returns": self.returns.copy(), **self.moments.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: ``{"returns", "mean", "var", "count"}``, arrays or CPU tensors.
        """
        self.returns = np.asarray(state["returns"]).astype(np.float64)
        self.moments.load_state(state)
