"""Gymnasium environments seen by agents as batched torch tensors.

:class:`TorchVecEnv` wraps a Gymnasium vector env (sync or async) with autoreset disabled and
does the resets itself, so that

* terminated and truncated stay apart, and the observation an episode ended on is returned
  (``final_observations``) for bootstrapping on truncation;
* each episode of each sub-environment is reset with its own seed, derived from
  ``(seed, env index, episode index)``: a run is reproducible, and a resumed run continues the
  episode sequence (see :meth:`TorchVecEnv.load_state`);
* agents act in ``[-1, 1]^A`` and actions are clipped and rescaled onto the Box bounds here, at
  the environment boundary;
* episode returns and lengths are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from gaussrl.core.errors import GaussrlError
from gaussrl.envs.wrappers import register_envs

Vectorization = Literal["sync", "async"]


class EnvError(GaussrlError, ValueError):
    """An environment that cannot be made or trained on (unknown id, action space not a Box)."""


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


def check_env_id(env_id: str) -> gymnasium.Env[Any, Any]:
    """Make one environment, checking that it exists and has a Box action space.

    Args:
        env_id: A registered Gymnasium id.

    Returns:
        The environment.

    Raises:
        EnvError: For an unknown id, a missing dependency, or a non-Box action space.
    """
    register_envs()
    try:
        env = gymnasium.make(env_id)
    except gymnasium.error.Error as error:
        raise EnvError(f"cannot make environment {env_id!r}: {error}") from None
    if not isinstance(env.action_space, spaces.Box):
        env.close()
        raise EnvError(
            f"environment {env_id!r} has action space {env.action_space}; gaussrl's Gaussian policies need a "
            f"continuous Box action space."
        )
    return env


def make_vector_env(env_id: str, num_envs: int, vectorization: Vectorization = "sync") -> VectorEnv:
    """A Gymnasium vector env of ``num_envs`` copies with autoreset disabled.

    Args:
        env_id: A registered Gymnasium id.
        num_envs: Number of copies.
        vectorization: ``"sync"`` (one process) or ``"async"`` (one subprocess per copy).

    Returns:
        The vector env.

    Raises:
        EnvError: As :func:`check_env_id`.
        ValueError: For an invalid ``num_envs`` or ``vectorization``.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs={num_envs} must be at least 1.")
    check_env_id(env_id).close()
    fns = [lambda: gymnasium.make(env_id) for _ in range(num_envs)]
    if vectorization == "sync":
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    if vectorization == "async":
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    raise ValueError(f"vectorization={vectorization!r} must be 'sync' or 'async'.")


@dataclass
class Step:
    """One vector step, as tensors of shape (N, ...).

    Attributes:
        observations: Next observations; for sub-environments whose episode ended, the first
            observation of the next episode.
        rewards: Shape (N, 1).
        terminated: Shape (N, 1), bool: the episode reached a terminal state (no bootstrap).
        truncated: Shape (N, 1), bool: the episode was cut (e.g. time limit; bootstrap).
        final_observations: The observations the episodes ended on (equal to ``observations``
            where no episode ended).
    """

    observations: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_observations: torch.Tensor


class TorchVecEnv:
    """A vector env that takes and returns torch tensors; see the module docstring.

    Args:
        env: A vector env with autoreset disabled (:func:`make_vector_env`).
        seed: Seed of the episode resets.
        device: Device of the tensors.
        index_offset: Index of the first sub-environment in the episode seeds (rank r of a data-parallel run
            with N copies per rank numbers its copies from r * N, so the ranks' episodes never share a seed).

    Raises:
        EnvError: If the action space is not a Box.
    """

    def __init__(self, env: VectorEnv, *, seed: int, device: str | torch.device = "cpu", index_offset: int = 0) -> None:
        space = env.single_action_space
        if not isinstance(space, spaces.Box):
            raise EnvError(f"action space {space} is not a Box; gaussrl's Gaussian policies need a Box.")
        self.env = env
        self.seed = int(seed)
        self.index_offset = int(index_offset)
        self.device = torch.device(device)
        self._on_cpu = self.device.type == "cpu"
        self.num_envs = env.num_envs
        self.observation_space = env.single_observation_space
        self.env_action_space = space
        self.action_space = spaces.Box(-1.0, 1.0, shape=space.shape, dtype=np.float32)
        low, high = space.low.astype(np.float64).reshape(-1), space.high.astype(np.float64).reshape(-1)
        bounded = np.isfinite(low) & np.isfinite(high)
        self._bounded = bounded
        self._center = np.where(bounded, (high + low) / 2.0, 0.0)
        self._scale = np.where(bounded, (high - low) / 2.0, 1.0)
        self._all_bounded = bool(bounded.all())
        # Sync vector envs of Box observations are stepped here, copy by copy: the same Gymnasium
        # envs, without SyncVectorEnv's per-step batching machinery (several times its cost for
        # small observations).
        direct = isinstance(env, SyncVectorEnv) and isinstance(self.observation_space, spaces.Box)
        self._envs: list[gymnasium.Env[Any, Any]] | None = list(env.envs) if direct else None
        self.episodes = np.zeros(self.num_envs, dtype=np.int64)
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._finished: list[tuple[float, int]] = []

    def _tensor(self, array: np.ndarray, dtype: type = np.float32) -> torch.Tensor:
        tensor = torch.from_numpy(np.asarray(array, dtype=dtype).reshape(self.num_envs, -1))
        return tensor if self._on_cpu else tensor.to(self.device)

    def _seeds(self, mask: np.ndarray) -> list[int | None]:
        pairs = enumerate(zip(self.episodes, mask, strict=True))
        offset = self.index_offset
        return [episode_seed(self.seed, offset + i, int(e)) if m else None for i, (e, m) in pairs]

    def reset(self) -> torch.Tensor:
        """Start a fresh episode in every sub-environment (the episode counters are kept).

        Returns:
            Observations, shape (N, num_observations).
        """
        observations, _ = self.env.reset(seed=self._seeds(np.ones(self.num_envs, dtype=bool)))
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._tensor(observations)

    def to_env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """Clip actions to [-1, 1] and rescale them onto the Box (unbounded dimensions pass through).

        Args:
            actions: Shape (N, A), in the agent's normalised action space.

        Returns:
            Environment actions, shape (N, *action_shape), in the Box's dtype.
        """
        # Clipped in the actions' dtype (exact), then rescaled in float64 (the float64 scale promotes it).
        raw = actions.detach().cpu()
        raw = (raw if raw.dtype == torch.float32 else raw.to(torch.float64)).numpy()
        clipped = np.minimum(np.maximum(raw, -1.0), 1.0)  # np.clip's result, without its Python overhead
        if self._all_bounded:
            scaled = clipped * self._scale + self._center
        else:
            scaled = np.where(self._bounded, self._center + self._scale * clipped, raw.astype(np.float64))
        return scaled.reshape((self.num_envs, *self.env_action_space.shape)).astype(self.env_action_space.dtype)

    def _step_envs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step the copies: observations, float64 rewards, terminated and truncated flags."""
        if self._envs is None:
            observations, rewards, terminated, truncated, _ = self.env.step(actions)
            return observations, np.asarray(rewards, dtype=np.float64), terminated, truncated
        observations, rewards, terminated, truncated, _ = zip(
            *[env.step(action) for env, action in zip(self._envs, actions, strict=True)], strict=True
        )
        return (
            np.stack(observations),
            np.array(rewards, dtype=np.float64),
            np.array(terminated, dtype=bool),
            np.array(truncated, dtype=bool),
        )

    def _reset_envs(self, done: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """Reset the copies whose episode ended; the observations with theirs replaced."""
        seeds = self._seeds(done)
        if self._envs is None:
            return self.env.reset(seed=seeds, options={"reset_mask": done})[0]
        observations = np.array(observations, copy=True)
        for i in np.flatnonzero(done):
            observations[i] = self._envs[i].reset(seed=seeds[i], options={"reset_mask": done})[0]
        return observations

    def step(self, actions: torch.Tensor) -> Step:
        """Step every sub-environment, resetting those whose episode ended.

        Args:
            actions: Shape (N, A), in [-1, 1] (values outside are clipped).

        Returns:
            The step.
        """
        observations, rewards, terminated, truncated = self._step_envs(self.to_env_actions(actions))
        self._returns += rewards
        self._lengths += 1
        done = np.logical_or(terminated, truncated)
        final = self._tensor(observations)
        if done.any():
            self._end_episodes(done)
            next_observations = self._tensor(self._reset_envs(done, observations))
        else:
            next_observations = final
        return Step(
            observations=next_observations,
            rewards=self._tensor(rewards),
            terminated=self._tensor(terminated, bool),
            truncated=self._tensor(truncated, bool),
            final_observations=final,
        )

    def _end_episodes(self, done: np.ndarray) -> None:
        for i in np.flatnonzero(done):
            self._finished.append((float(self._returns[i]), int(self._lengths[i])))
        self._returns[done] = 0.0
        self._lengths[done] = 0
        self.episodes[done] += 1

    def pop_episodes(self) -> list[tuple[float, int]]:
        """The (return, length) of each episode finished since the last call.

        Returns:
            A list in order of completion.
        """
        finished, self._finished = self._finished, []
        return finished

    def state(self) -> dict[str, Any]:
        """The episode counters, for a checkpoint.

        Returns:
            A JSON-serialisable dict.
        """
        return {"seed": self.seed, "episodes": self.episodes.tolist()}

    def load_state(self, state: dict[str, Any]) -> torch.Tensor:
        """Restore the episode counters and start the next episode of each sub-environment.

        Gymnasium cannot save a simulator's internal state in general, so an episode that was in
        progress when the checkpoint was written restarts from its first step (same seed). A
        resumed run therefore equals the uninterrupted one exactly when the checkpoint falls on an
        episode boundary of every sub-environment (e.g. Pendulum-v1, whose episodes all last 200
        steps, with checkpoints every multiple of 200 vector steps).

        Args:
            state: As returned by :meth:`state`.

        Returns:
            Observations, shape (N, num_observations).
        """
        episodes = np.asarray(state["episodes"], dtype=np.int64)
        if episodes.shape != (self.num_envs,):
            raise ValueError(f"the checkpoint has {episodes.size} environments; this run has {self.num_envs}.")
        self.seed = int(state["seed"])
        self.episodes = episodes
        return self.reset()

    def close(self) -> None:
        """Close the vector env."""
        self.env.close()
