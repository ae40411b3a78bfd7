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
* episode returns and lengths are recorded;
* NaN or infinity in an observation or reward is caught here, where it enters: with
  ``nonfinite="stop"`` :class:`NonFiniteDataError` names the environment, the sub-environment,
  the quantity and the episode step; with ``"skip"`` the step is returned with ``skipped`` set,
  the offending sub-environments start a new episode and their unfinished episode is not recorded.
"""

from __future__ import annotations

import functools
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from gaussrl.core.checks import check_env_observations
from gaussrl.core.errors import EnvError
from gaussrl.envs.step import NonFinite, NonFiniteDataError, Vectorization, episode_seed
from gaussrl.envs.wrappers import register_envs


def finite_rows(values: np.ndarray, num_rows: int) -> np.ndarray:
    """Which rows of an array are finite once converted to float32 (what the agents receive).

    Args:
        values: Shape (num_rows, ...).
        num_rows: The size of the first axis.

    Returns:
        Shape (num_rows,), bool.
    """
    with np.errstate(over="ignore"):
        array = np.asarray(values, dtype=np.float32)
    return np.asarray(np.isfinite(array.reshape(num_rows, -1)).all(axis=1)) if num_rows else np.ones(0, dtype=bool)


def describe_value(values: np.ndarray) -> str:
    """Name the first value of an array that is not finite in float32: ``"NaN"``, ``"inf"``, ``"-inf"``.

    Args:
        values: An array holding at least one such value.

    Returns:
        Its name; ``"a value beyond float32's range (x)"`` for one finite only in float64.
    """
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    with np.errstate(over="ignore"):
        first = flat[~np.isfinite(flat.astype(np.float32))][0]
    if np.isfinite(first):
        return f"a value beyond float32's range ({first:g})"
    return "NaN" if np.isnan(first) else ("inf" if first > 0 else "-inf")


class MujocoWarning(UserWarning):
    """A warning of the MuJoCo simulator, such as a deprecated attribute in an environment's model file."""


MUJOCO_WARNED: set[str] = set()
"""The MuJoCo messages this process has warned about (each is shown once, whatever the warning filters)."""


def _warn_mujoco(message: str) -> None:
    if message not in MUJOCO_WARNED:
        MUJOCO_WARNED.add(message)
        warnings.warn(f"MuJoCo: {message}", MujocoWarning, stacklevel=1)


def route_mujoco_warnings(env_id: str) -> bool:
    """Send MuJoCo's warnings through Python's ``warnings`` when ``env_id`` runs on MuJoCo.

    Left alone, MuJoCo prints each warning for every model it compiles (every environment copy and
    evaluation environment: the same line many times over a run's output) and appends it to
    ``MUJOCO_LOG.TXT`` in the working directory. Through ``warnings`` (category
    :class:`MujocoWarning`) a message shows once per process (:data:`MUJOCO_WARNED`), no file is
    written, and the usual filters apply (``python -W ignore::gaussrl.envs.gymnasium.MujocoWarning``, or ``-W error`` to
    stop on one). Uses MuJoCo's public ``set_mju_user_warning``; other environments are untouched.

    Args:
        env_id: A Gymnasium id.

    Returns:
        Whether the environment runs on MuJoCo (and the warnings are now routed).
    """
    try:
        entry_point = gymnasium.spec(env_id).entry_point
    except gymnasium.error.Error:
        return False
    if "mujoco" not in str(entry_point):
        return False
    import mujoco  # noqa: PLC0415 (an extra: imported only for the MuJoCo environments)

    mujoco.set_mju_user_warning(_warn_mujoco)
    return True


def make_env(env_id: str) -> gymnasium.Env[Any, Any]:
    """``gymnasium.make(env_id)`` with MuJoCo's warnings routed (:func:`route_mujoco_warnings`).

    Args:
        env_id: A registered Gymnasium id.

    Returns:
        The environment.
    """
    route_mujoco_warnings(env_id)
    return gymnasium.make(env_id)


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
        env = make_env(env_id)
    except (gymnasium.error.Error, ModuleNotFoundError) as error:  # "module:Id" imports the module
        raise EnvError(f"cannot make environment {env_id!r}: {error}") from None
    if not isinstance(env.action_space, spaces.Box):
        env.close()
        raise EnvError(
            f"environment {env_id!r} has action space {env.action_space}; gaussrl's Gaussian policies need a "
            f"continuous Box action space."
        )
    return env


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM while subprocesses start, so that they inherit the ignoring.

    Ctrl-C signals the whole process group: the trainer (which checkpoints on it) must outlive its
    environment workers, which it closes itself. Outside the main thread nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def make_vector_env(env_id: str, num_envs: int, vectorization: Vectorization = "sync") -> VectorEnv[Any, Any, Any]:
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
    fns = [functools.partial(make_env, env_id) for _ in range(num_envs)]  # in each subprocess when async
    if vectorization == "sync":
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    if vectorization == "async":
        with _signals_ignored():
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
        skipped: With ``nonfinite="skip"``: shape (N,), bool, the sub-environments that returned
            NaN or infinity in this step (they were reset); None when all values were finite. A
            step with ``skipped`` set is not a valid transition for any sub-environment.
    """

    observations: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_observations: torch.Tensor
    skipped: np.ndarray | None = None


class TorchVecEnv:
    """A vector env that takes and returns torch tensors; see the module docstring.

    Args:
        env: A vector env with autoreset disabled (:func:`make_vector_env`).
        seed: Seed of the episode resets.
        device: Device of the tensors.
        name: The environment's name in messages (its Gymnasium id).
        nonfinite: What a NaN or infinity in an observation or reward does: ``"stop"`` raises
            :class:`NonFiniteDataError`, ``"skip"`` marks the step (see :class:`Step`).
        index_offset: Index of the first sub-environment in the episode seeds (rank r of a data-parallel run
            with N copies per rank numbers its copies from r * N, so the ranks' episodes never share a seed).

    Raises:
        EnvError: If the action space is not a Box.
    """

    def __init__(
        self,
        env: VectorEnv[Any, Any, Any],
        *,
        seed: int,
        device: str | torch.device = "cpu",
        name: str = "environment",
        nonfinite: NonFinite = "stop",
        index_offset: int = 0,
    ) -> None:
        space = env.single_action_space
        if not isinstance(space, spaces.Box):
            raise EnvError(f"action space {space} is not a Box; gaussrl's Gaussian policies need a Box.")
        self.env = env
        self.name = name
        self.nonfinite = nonfinite
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
        self._envs: list[gymnasium.Env[Any, Any]] | None = list(env.envs) if isinstance(env, SyncVectorEnv) else None
        self._envs = self._envs if direct else None
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
        try:
            # Gymnasium's vector reset takes one seed per copy, though its annotation says int.
            observations, _ = self.env.reset(seed=self._seeds(np.ones(self.num_envs, dtype=bool)))  # type: ignore[arg-type]
        except ValueError as error:  # Gymnasium's vector envs fail to batch observations that do not fit the space
            raise EnvError(
                f"environment {self.name!r} failed to reset ({error}); check that its observations match its "
                f"observation space {self.observation_space}."
            ) from error
        if isinstance(self.observation_space, spaces.Box):
            space_shape = self.observation_space.shape
            check_env_observations(self.name, np.shape(observations), self.num_envs, space_shape)
        self._check_reset(observations)
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
        detached = actions.detach().cpu()
        raw: np.ndarray = (detached if detached.dtype == torch.float32 else detached.to(torch.float64)).numpy()
        clipped = np.minimum(np.maximum(raw, -1.0), 1.0)  # np.clip's result, without its Python overhead
        if self._all_bounded:
            scaled = clipped * self._scale + self._center
        else:
            scaled = np.where(self._bounded, self._center + self._scale * clipped, raw.astype(np.float64))
        shaped: np.ndarray = scaled.reshape((self.num_envs, *self.env_action_space.shape))
        return shaped.astype(self.env_action_space.dtype)

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
            observations = self.env.reset(seed=seeds, options={"reset_mask": done})[0]  # type: ignore[arg-type]
        else:
            observations = np.array(observations, copy=True)
            for i in np.flatnonzero(done):
                observations[i] = self._envs[i].reset(seed=seeds[i], options={"reset_mask": done})[0]
        self._check_reset(observations, done)
        return observations

    def _nonfinite_rows(self, observations: np.ndarray, rewards: np.ndarray) -> np.ndarray | None:
        """The sub-environments whose observation or reward holds NaN/inf (in float32); None when there is none.

        The arrays are the float32 ones the agent receives, so a value beyond float32's range counts too.
        """
        if np.isfinite(rewards).all() and np.isfinite(observations).all():
            return None
        return np.asarray(~(finite_rows(rewards, self.num_envs) & finite_rows(observations, self.num_envs)))

    def _nonfinite_error(self, bad: np.ndarray, observations: np.ndarray, rewards: np.ndarray) -> NonFiniteDataError:
        i = int(np.flatnonzero(bad)[0])
        reward_ok = bool(finite_rows(rewards[i : i + 1], 1)[0])
        quantity, values = ("observation", np.asarray(observations)[i]) if reward_ok else ("reward", rewards[i])
        return NonFiniteDataError(
            f"environment {self.name!r} returned {describe_value(values)} in its {quantity} (sub-environment {i} "
            f"of {self.num_envs}, step {int(self._lengths[i]) + 1} of its episode {int(self.episodes[i])})"
        )

    def _check_reset(self, observations: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Raise for NaN/inf in first observations, whatever ``nonfinite`` says (an episode cannot start)."""
        selected = np.asarray(observations) if rows is None else np.asarray(observations)[rows]
        if not finite_rows(selected, len(selected)).all():
            raise NonFiniteDataError(
                f"environment {self.name!r} returned {describe_value(selected)} in the first observation of an "
                f"episode (reset); check the environment's reset()"
            )

    def step(self, actions: torch.Tensor) -> Step:
        """Step every sub-environment, resetting those whose episode ended.

        Args:
            actions: Shape (N, A), in [-1, 1] (values outside are clipped).

        Returns:
            The step.
        """
        raw_observations, rewards, terminated, truncated = self._step_envs(self.to_env_actions(actions))
        # The float32 arrays the tensors are made of; checked as such (an overflow to inf is caught too).
        with np.errstate(over="ignore"):
            observations, rewards32 = np.asarray(raw_observations, dtype=np.float32), rewards.astype(np.float32)
        bad = self._nonfinite_rows(observations, rewards32)
        if bad is not None:
            if self.nonfinite == "stop":
                raise self._nonfinite_error(bad, raw_observations, rewards)
            rewards, rewards32 = np.where(bad, 0.0, rewards), np.where(bad, 0.0, rewards32).astype(np.float32)
            truncated = np.logical_or(truncated, bad)
        self._returns += rewards
        self._lengths += 1
        done = np.logical_or(terminated, truncated)
        final = self._tensor(observations)
        if done.any():
            self._end_episodes(done if bad is None else done & ~bad, done)
            next_observations = self._tensor(self._reset_envs(done, observations))
        else:
            next_observations = final
        return Step(
            observations=next_observations,
            rewards=self._tensor(rewards32),
            terminated=self._tensor(terminated, bool),
            truncated=self._tensor(truncated, bool),
            final_observations=final,
            skipped=bad,
        )

    def _end_episodes(self, finished: np.ndarray, done: np.ndarray) -> None:
        """Record the episodes of ``finished`` and reset the counters of ``done`` (a superset)."""
        for i in np.flatnonzero(finished):
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
