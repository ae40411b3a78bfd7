"""Proximal Policy Optimization for JAX on Gymnasium environments (Schulman et al., 2017), MLP policies.

The behaviour of :class:`gaussrl.agents.torch.PPO` for feed-forward policies (same ``PPOConfig``):
the rollout is collected step by step from the trainer's environments (host NumPy arrays, one
compiled call per step for normalisation, sampling and the log-prob), and each full rollout is
learned from by :func:`gaussrl.agents.jax.ppo_core.make_update`: values, GAE, every epoch and
minibatch as one compiled call. The agent stores the exact action it sampled and scores that
same action at update time; the environment wrapper clips and rescales actions at its boundary.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.agents.config import PPOConfig
from gaussrl.agents.jax.networks import GaussianMLPPolicy, ValueMLP, params_to_torch
from gaussrl.agents.jax.normalization import (
    RunningStats,
    denormalize,
    mean_std,
    normalize,
    stats_init,
    stats_update,
)
from gaussrl.agents.jax.ppo_core import PPOModels, PPOState, Rollout, init_state, make_update
from gaussrl.agents.jax.storage import EVAL_SEED, jax_key, key_array, restore_leaves
from gaussrl.agents.normalization import ReturnNormalizer
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.envs.step import ArrayStep

ROLLOUT_FIELDS = Rollout._fields


def _act(
    models: PPOModels, params: Any, obs_stats: RunningStats | None, key: jax.Array, observations: jax.Array
) -> tuple[Any, ...]:
    """Fold the observations into their statistics, normalise them, sample and score: one compiled call."""
    x = observations
    if obs_stats is not None:
        obs_stats = stats_update(obs_stats, observations)
        x = normalize(obs_stats, observations)
    key, sample_key = jax.random.split(key)
    actions, outputs = models.policy.act({"observations": x}, role="policy", params=params, key=sample_key)
    log_std = jnp.broadcast_to(outputs["log_std"], actions.shape)
    return obs_stats, key, x, actions, outputs["log_prob"], outputs["mean_actions"], log_std


def _values(
    models: PPOModels, params: Any, value_stats: RunningStats | None, obs_stats: RunningStats | None, obs: jax.Array
) -> jax.Array:
    """V of raw observations (normalised with the current statistics), denormalised: the bootstrap values."""
    x = obs if obs_stats is None else normalize(obs_stats, obs)
    values: jax.Array = models.value.act({"observations": x}, role="value", params=params)[0]
    return values if value_stats is None else denormalize(value_stats, values)


def _act_eval(
    models: PPOModels,
    params: Any,
    obs_stats: RunningStats | None,
    key: jax.Array,
    observations: jax.Array,
    *,
    deterministic: bool,
) -> tuple[jax.Array, jax.Array]:
    key, sample_key = jax.random.split(key)
    x = observations if obs_stats is None else normalize(obs_stats, observations)
    actions, outputs = models.policy.act({"observations": x}, role="policy", params=params, key=sample_key)
    return (outputs["mean_actions"] if deterministic else actions), key


def _normalized(obs_stats: RunningStats | None, observations: jax.Array) -> jax.Array:
    return observations if obs_stats is None else normalize(obs_stats, observations)


class PPO:
    """PPO with GAE, clipped surrogate, optional value clipping, entropy bonus and KL-adaptive rate.

    Args:
        observation_space: Single-environment observation space.
        action_space: The normalised action Box.
        config: Hyperparameters.
        num_envs: Number of parallel environments.
        seed: Seed of the parameters, the sampling and the minibatch shuffles.
        total_updates: Number of updates of the run; needed by the "linear" learning-rate schedule.
    """

    def __init__(
        self,
        observation_space: Any,
        action_space: Any,
        *,
        config: PPOConfig,
        num_envs: int,
        seed: int,
        total_updates: int | None = None,
    ) -> None:
        config.check_batch(num_envs, recurrent=False)
        hidden = config.hidden_sizes
        policy = GaussianMLPPolicy(
            observation_space,
            action_space,
            hidden_sizes=hidden,
            activation=config.activation,
            initialization=config.initialization,
            initial_log_std=config.initial_log_std,
        )
        value = ValueMLP(
            observation_space, hidden_sizes=hidden, activation=config.activation, initialization=config.initialization
        )
        keys = jax.random.split(jax_key(seed), 3)
        policy.init_state_dict(role="policy", key=keys[0])
        value.init_state_dict(role="value", key=keys[1])
        self.models, self.config, self.num_envs = PPOModels(policy, value), config, num_envs
        self.learning: PPOState = init_state(self.models, config)
        self.obs_stats = stats_init(policy.num_observations) if config.observation_normalization else None
        self.reward_scaler = ReturnNormalizer(num_envs, config.discount_factor) if config.reward_normalization else None
        self.key, self.eval_key = keys[2], jax_key(EVAL_SEED)
        num_obs, num_actions, steps = policy.num_observations, policy.num_actions, config.rollouts
        widths = {"observations": num_obs, "actions": num_actions, "mean_actions": num_actions}
        widths.update(log_std=num_actions, log_prob=1, rewards=1, dones=1)
        self.rollout = {name: np.zeros((steps, num_envs, widths[name]), np.float32) for name in ROLLOUT_FIELDS}
        self.rollout["dones"] = self.rollout["dones"].astype(bool)
        self.position = 0
        self._update = make_update(self.models, config, total_updates=total_updates)
        self._act = jax.jit(functools.partial(_act, self.models))
        self._values = jax.jit(functools.partial(_values, self.models))
        self._act_eval = jax.jit(functools.partial(_act_eval, self.models), static_argnames="deterministic")
        self._normalized = jax.jit(_normalized)
        self._pending: dict[str, np.ndarray] = {}

    def _value_stats(self) -> RunningStats | None:
        return self.learning.value_stats if self.config.value_normalization else None

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Sample actions for a rollout step (and update the observation statistics).

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Actions (N, A), unclipped: exactly the samples whose log-prob is stored.
        """
        params = self.learning.params["policy"]
        self.obs_stats, self.key, *outputs = self._act(params, self.obs_stats, self.key, observations)
        names = ("observations", "actions", "log_prob", "mean_actions", "log_std")
        self._pending = dict(zip(names, (np.asarray(x) for x in outputs), strict=True))
        return self._pending["actions"]

    def observe(self, step: ArrayStep) -> dict[str, float]:
        """Store the transition of the last :meth:`act`; update when the rollout is full.

        Args:
            step: What the environment returned for those actions.

        Returns:
            Update metrics when an update ran, else an empty dict.
        """
        cfg = self.config
        rewards = step.rewards * cfg.reward_scale if cfg.reward_scale != 1.0 else step.rewards
        dones = step.terminated | step.truncated
        if self.reward_scaler is not None:
            rewards = self.reward_scaler(rewards, dones)
        if cfg.time_limit_bootstrap and step.truncated.any():
            bootstrap = step.truncated & ~step.terminated
            params = self.learning.params["value"]
            final = self._values(params, self._value_stats(), self.obs_stats, step.final_observations)
            rewards = rewards + cfg.discount_factor * np.asarray(final) * bootstrap
        row = {**self._pending, "rewards": rewards, "dones": dones}
        for name, value in row.items():
            self.rollout[name][self.position] = value
        self._pending = {}
        self.position += 1
        if self.position < cfg.rollouts:
            return {}
        self.position = 0
        return self.update(step.observations)

    def update(self, next_observations: np.ndarray) -> dict[str, float]:
        """Learn from the stored rollout: one compiled call (:func:`~gaussrl.agents.jax.ppo_core.make_update`).

        Args:
            next_observations: Raw observations after the rollout's last step, (N, num_observations).

        Returns:
            Mean losses, KL, entropy, learning rate and policy std of the update.
        """
        self.key, key = jax.random.split(self.key)
        rollout = Rollout(**{name: jnp.asarray(self.rollout[name]) for name in ROLLOUT_FIELDS})
        next_x = self._normalized(self.obs_stats, next_observations)
        self.learning, metrics = self._update(self.learning, rollout, next_x, key)
        return {name: float(value) for name, value in metrics.items()}

    def act_eval(
        self, observations: np.ndarray, states: list[Any], *, deterministic: bool = True
    ) -> tuple[np.ndarray, list[Any]]:
        """Act for evaluation without touching the training state (the key stream of :meth:`eval_states`).

        Args:
            observations: Shape (N, num_observations).
            states: Unused (feed-forward policies); returned as is.
            deterministic: Take the mean action instead of a sample.

        Returns:
            Actions (N, A) and ``states``.
        """
        params = self.learning.params["policy"]
        actions, self.eval_key = self._act_eval(
            params, self.obs_stats, self.eval_key, observations, deterministic=deterministic
        )
        return np.asarray(actions), states

    def eval_states(self, batch: int) -> list[Any]:
        """No hidden states: the JAX agents' policies are feed-forward.

        Args:
            batch: Number of environments.

        Returns:
            An empty list.
        """
        self.eval_key = jax_key(EVAL_SEED)  # every evaluation replays the same samples and leaves training's keys alone
        return []

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as nested dicts of NumPy arrays and JSON values.

        Returns:
            Learning state (parameters, Adam, learning rate, value statistics), observation
            statistics, key, rollout and its position.
        """
        return {
            "learning": [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(self.learning)],
            "obs_stats": None if self.obs_stats is None else [np.asarray(x) for x in self.obs_stats],
            "reward_scaler": None if self.reward_scaler is None else self.reward_scaler.state(),
            "key": key_array(self.key),
            "rollout": {name: array.copy() for name, array in self.rollout.items()},
            "position": self.position,
            "updates": int(self.learning.updates),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: As returned by :meth:`state` (arrays may come back as CPU tensors).
        """
        self.learning = restore_leaves(self.learning, state["learning"])
        if self.obs_stats is not None:
            self.obs_stats = restore_leaves(self.obs_stats, state["obs_stats"])
        if self.reward_scaler is not None:
            self.reward_scaler.load_state({k: np.asarray(v) for k, v in state["reward_scaler"].items()})
        self.key = jax_key(np.asarray(state["key"]))
        for name, array in self.rollout.items():
            array[...] = np.asarray(state["rollout"][name])
        self.position = int(state["position"])

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names (``gaussrl export``).

        Returns:
            The arrays; the std is the one :func:`~gaussrl.agents.jax.normalization.normalize` divides by.
        """
        mean, std = (None, None) if self.obs_stats is None else mean_std(self.obs_stats)
        return PolicyArrays(params_to_torch(self.learning.params["policy"]), mean, std)
