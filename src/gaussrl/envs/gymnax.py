"""gymnax environments (JAX-native, steppable inside ``jax.jit``) behind the same conventions as Gymnasium's.

``gaussrl train --backend jax --env gymnax/Pendulum-v1`` trains on these; any gymnax id with a
Box action space works the same way. As with :class:`gaussrl.envs.gymnasium.TorchVecEnv`:

* the agent acts in ``[-1, 1]^A``; actions are clipped and rescaled onto the Box here;
* terminated and truncated stay apart (an episode ending at ``max_steps_in_episode`` counts as
  truncated), and the observation an episode ended on is returned for bootstrapping;
* an environment whose episode ended is reset with a fresh key in the same step.

Every function is pure and works on one environment; :class:`VecEnv` vmaps them over ``N``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.core.errors import EnvError
from gaussrl.envs import GYMNAX_PREFIX


class EnvStep(NamedTuple):
    """One vector step, arrays of shape (N, ...)."""

    observations: jax.Array
    """Next observations; the reset observation where an episode ended."""
    rewards: jax.Array
    """Shape (N, 1), float32."""
    terminated: jax.Array
    """Shape (N, 1), bool."""
    truncated: jax.Array
    """Shape (N, 1), bool."""
    final_observations: jax.Array
    """The observations the episodes ended on (equal to ``observations`` where none ended)."""


@dataclass(frozen=True, eq=False)
class VecEnv:
    """``num_envs`` copies of a gymnax environment, stepped as one batch (hashed by identity under ``jit``).

    Attributes:
        env_id: The id given to :func:`make`.
        env: The gymnax environment.
        params: Its default parameters.
        num_envs: Number of copies.
        num_observations: Flat observation size.
        num_actions: Action size.
        low: Lower action bounds, shape (A,).
        high: Upper action bounds, shape (A,).
    """

    env_id: str
    env: Any
    params: Any
    num_envs: int
    num_observations: int
    num_actions: int
    low: np.ndarray
    high: np.ndarray

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        """Reset every copy.

        Args:
            key: PRNG key (split into one per copy).

        Returns:
            Observations (N, O) and the batched environment state.
        """
        observations, state = jax.vmap(self.env.reset_env, in_axes=(0, None))(
            jax.random.split(key, self.num_envs), self.params
        )
        # gymnax builds some state leaves from Python scalars (weakly typed); the states step() returns are not.
        # Strong types here give the compiled training chunk one signature, so it compiles once, not twice.
        state = jax.tree_util.tree_map(lambda x: jnp.asarray(x, x.dtype), state)
        return observations.reshape(self.num_envs, -1).astype(jnp.float32), state

    def to_env_actions(self, actions: jax.Array) -> jax.Array:
        """Clip actions to [-1, 1] and rescale them onto the Box, ``center + scale * a``."""
        center = jnp.asarray((self.high + self.low) / 2.0, jnp.float32)
        scale = jnp.asarray((self.high - self.low) / 2.0, jnp.float32)
        return center + scale * jnp.clip(actions, -1.0, 1.0)

    def step(self, key: jax.Array, state: Any, actions: jax.Array) -> tuple[EnvStep, Any]:
        """Step every copy with normalised actions, resetting those whose episode ended.

        Args:
            key: PRNG key for this step (split per copy).
            state: Batched environment state.
            actions: Shape (N, A), in [-1, 1] (values outside are clipped).

        Returns:
            The step and the next state.
        """
        return jax.vmap(self._step_one, in_axes=(0, 0, 0))(
            jax.random.split(key, self.num_envs), state, self.to_env_actions(actions)
        )

    def _step_one(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[EnvStep, Any]:
        step_key, reset_key = jax.random.split(key)
        observation, stepped, reward, ended, _ = self.env.step_env(step_key, state, action, self.params)
        limit = getattr(self.params, "max_steps_in_episode", None)
        truncated = stepped.time >= limit if limit is not None else jnp.zeros((), bool)
        # gymnax < 1.0 ends an episode at the time limit inside step_env; gymnax 1.0 reports only termination there.
        done = ended | truncated
        reset_observation, reset_state = self.env.reset_env(reset_key, self.params)
        next_state = jax.tree_util.tree_map(lambda r, s: jnp.where(done, r, s), reset_state, stepped)
        final = observation.reshape(-1).astype(jnp.float32)
        step = EnvStep(
            observations=jnp.where(done, reset_observation.reshape(-1).astype(jnp.float32), final),
            rewards=jnp.reshape(reward, (1,)).astype(jnp.float32),
            terminated=jnp.reshape(done & ~truncated, (1,)),
            truncated=jnp.reshape(truncated, (1,)),
            final_observations=final,
        )
        return step, next_state


def make(env_id: str, num_envs: int) -> VecEnv:
    """``num_envs`` copies of the gymnax environment ``gymnax/<id>``.

    Args:
        env_id: ``"gymnax/"`` followed by a gymnax id, e.g. ``"gymnax/Pendulum-v1"``.
        num_envs: Number of copies.

    Returns:
        The vector environment.

    Raises:
        EnvError: If gymnax is missing, the id is unknown, or the action space is not a Box.
    """
    try:
        import gymnax  # noqa: PLC0415 (an optional dependency)
        from gymnax.environments import spaces  # noqa: PLC0415
    except ImportError as error:
        raise EnvError(
            f"{env_id!r} needs gymnax, which is not importable ({error}); "
            "install it with pip install 'gaussrl[gymnax]'."
        ) from None
    name = env_id.removeprefix(GYMNAX_PREFIX)
    if name not in gymnax.registered_envs:
        raise EnvError(
            f"{name!r} is not a gymnax environment; use gymnax/<id> with an id of gymnax.registered_envs, "
            f"e.g. gymnax/Pendulum-v1."
        )
    env, params = gymnax.make(name)
    space = env.action_space(params)
    if not isinstance(space, spaces.Box):
        raise EnvError(
            f"environment {env_id!r} has action space {type(space).__name__}; gaussrl's Gaussian policies need a "
            f"continuous Box action space."
        )
    shape = tuple(np.shape(space.low)) or tuple(space.shape)
    num_actions = int(np.prod(space.shape))
    low = np.broadcast_to(np.asarray(space.low, np.float64), shape).reshape(-1) * np.ones(num_actions)
    high = np.broadcast_to(np.asarray(space.high, np.float64), shape).reshape(-1) * np.ones(num_actions)
    num_observations = int(np.prod(env.observation_space(params).shape))
    return VecEnv(env_id, env, params, num_envs, num_observations, num_actions, low, high)
