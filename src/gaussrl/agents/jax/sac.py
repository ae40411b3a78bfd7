"""Soft Actor-Critic for JAX (Haarnoja et al., 2018, "SAC: Algorithms and Applications").

The behaviour of :class:`gaussrl.agents.torch.SAC` (same ``SACConfig``, same losses, same order
of the critic, policy and temperature steps), written as pure functions over pytrees: the
replay buffer lives on the device inside :class:`SACState`, and storing a transition, sampling
a batch and the ``gradient_steps`` updates run as ONE jitted call per environment step
(the state buffers donated, so the buffer is updated in place). The agent class takes and
returns NumPy arrays (the trainer's backend boundary, see :mod:`gaussrl.trainer.backends`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.agents.config import SACConfig
from gaussrl.agents.jax.networks import QMLP, GaussianMLPPolicy, params_to_torch
from gaussrl.agents.jax.optim import adam, adam_step, soft_update
from gaussrl.agents.jax.storage import EVAL_SEED, Replay, jax_key, key_array, normalize, restore_leaves
from gaussrl.agents.normalization import RunningMoments
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.envs.step import ArrayStep

METRICS = ("critic_loss", "policy_loss", "alpha", "q_value")


class SACState(flax.struct.PyTreeNode):  # type: ignore[no-untyped-call]
    """Everything SAC learns and samples with.

    Attributes:
        policy: Policy parameters.
        critics: The two critics' parameters.
        target_critics: Their Polyak-averaged copies.
        policy_opt: Adam state of the policy.
        critic_opt: Adam state of both critics together.
        entropy_opt: Adam state of the log-temperature.
        log_entropy_coefficient: log(alpha), 0-d.
        key: PRNG key of the batch sampling and the policy's noise.
    """

    policy: Any
    critics: Any
    target_critics: Any
    policy_opt: Any
    critic_opt: Any
    entropy_opt: Any
    log_entropy_coefficient: jax.Array
    key: jax.Array


@dataclasses.dataclass(frozen=True)
class SACNets:
    """The static parts of the compiled update: models, optimizers and configuration.

    Attributes:
        policy: The squashed Gaussian policy module.
        critic: One Q module (the four critics share its architecture).
        config: Hyperparameters.
        target_entropy: The temperature's target entropy.
    """

    policy: GaussianMLPPolicy
    critic: QMLP
    config: SACConfig
    target_entropy: float

    def q(self, params: Any, observations: jax.Array, actions: jax.Array) -> jax.Array:
        """Q-values (N, 1)."""
        return self.critic.act({"observations": observations, "taken_actions": actions}, role="critic", params=params)[
            0
        ]

    def min_q(self, critics: Any, observations: jax.Array, actions: jax.Array) -> jax.Array:
        """The smaller of the two critics' Q-values (N, 1)."""
        return jnp.minimum(*(self.q(params, observations, actions) for params in critics))


def critic_targets(nets: SACNets, state: SACState, batch: dict[str, jax.Array], key: jax.Array) -> jax.Array:
    """Soft Bellman targets ``r + gamma (1 - terminated) (min Q'(s', a') - alpha log pi(a'|s'))``, (B, 1)."""
    alpha = jnp.exp(state.log_entropy_coefficient)
    next_x = batch["next_observations"]
    next_actions, outputs = nets.policy.act({"observations": next_x}, role="policy", params=state.policy, key=key)
    next_q = nets.min_q(state.target_critics, next_x, next_actions) - alpha * outputs["log_prob"]
    target: jax.Array = batch["rewards"] + nets.config.discount_factor * (1.0 - batch["terminated"]) * next_q
    return jax.lax.stop_gradient(target)


def critic_loss(
    nets: SACNets, critics: Any, batch: dict[str, jax.Array], target: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The mean of the two critics' squared errors, and Q1 (B, 1)."""
    q1, q2 = (nets.q(params, batch["observations"], batch["actions"]) for params in critics)
    return (jnp.mean((q1 - target) ** 2) + jnp.mean((q2 - target) ** 2)) / 2.0, q1


def policy_loss(
    nets: SACNets, policy: Any, *, critics: Any, alpha: jax.Array, observations: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``mean(alpha log pi(a|s) - min Q(s, a))`` with ``a`` reparameterized, and log pi (B, 1)."""
    actions, outputs = nets.policy.act({"observations": observations}, role="policy", params=policy, key=key)
    q_new = nets.min_q(jax.lax.stop_gradient(critics), observations, actions)
    return jnp.mean(alpha * outputs["log_prob"] - q_new), outputs["log_prob"]


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """``-mean(log_alpha (log pi + target_entropy))`` (Haarnoja et al., 2018, eq. 18)."""
    return -jnp.mean(log_alpha * (jax.lax.stop_gradient(log_prob) + target_entropy))


def sac_update(nets: SACNets, state: SACState, batch: dict[str, jax.Array]) -> tuple[SACState, jax.Array]:
    """One gradient step of the critics, the policy and the temperature; then the soft target update.

    Args:
        nets: Models and configuration.
        state: The learning state.
        batch: ``observations``, ``actions``, ``rewards``, ``next_observations``, ``terminated``
            (B, ...), observations already normalised.

    Returns:
        The new state and the metrics :data:`METRICS` stacked, (4,).
    """
    cfg, optimizers = nets.config, nets_optimizers(nets.config)
    key, next_key, new_key = jax.random.split(state.key, 3)
    alpha = jnp.exp(state.log_entropy_coefficient)
    target = critic_targets(nets, state, batch, next_key)
    (c_loss, q1), grads = jax.value_and_grad(functools.partial(critic_loss, nets), has_aux=True)(
        state.critics, batch, target
    )
    critics, critic_opt = adam_step(optimizers[1], grads, state.critic_opt, state.critics, cfg.grad_norm_clip)
    loss = functools.partial(policy_loss, nets, critics=critics, alpha=alpha, observations=batch["observations"])
    (p_loss, log_prob), grads = jax.value_and_grad(lambda p: loss(p, key=new_key), has_aux=True)(state.policy)
    policy, policy_opt = adam_step(optimizers[0], grads, state.policy_opt, state.policy, cfg.grad_norm_clip)
    log_alpha, entropy_opt = state.log_entropy_coefficient, state.entropy_opt
    if cfg.learn_entropy:
        grad = jax.grad(temperature_loss)(log_alpha, log_prob, nets.target_entropy)
        log_alpha, entropy_opt = adam_step(optimizers[2], grad, entropy_opt, log_alpha, cfg.grad_norm_clip)
    new_state = SACState(
        policy=policy,
        critics=critics,
        target_critics=soft_update(state.target_critics, critics, cfg.polyak),
        policy_opt=policy_opt,
        critic_opt=critic_opt,
        entropy_opt=entropy_opt,
        log_entropy_coefficient=log_alpha,
        key=key,
    )
    return new_state, jnp.stack([c_loss, p_loss, alpha, jnp.mean(q1)])


def nets_optimizers(config: SACConfig) -> tuple[Any, Any, Any]:
    """Adam of the policy, the critics and the temperature."""
    return adam(config.actor_learning_rate), adam(config.critic_learning_rate), adam(config.entropy_learning_rate)


def observe_step(
    nets: SACNets,
    state: SACState,
    replay: Replay,
    transition: dict[str, jax.Array],
    obs_stats: tuple[jax.Array, jax.Array] | None,
    *,
    learn: bool,
) -> tuple[SACState, Replay, jax.Array]:
    """Store a transition, then (``learn``) sample and take ``gradient_steps`` updates: one compiled call.

    Args:
        nets: Models and configuration (static).
        state: The learning state (donated).
        replay: The replay buffer (donated).
        transition: One vector step, (N, ...) per name.
        obs_stats: Observation mean and std for normalisation, or None.
        learn: Whether gradient steps are due (static).

    Returns:
        The new state, buffer and the last update's metrics (zeros without one).
    """
    replay = replay.add(transition)
    metrics = jnp.zeros(len(METRICS))
    if not learn:
        return state, replay, metrics
    for _ in range(nets.config.gradient_steps):
        key, sample_key = jax.random.split(state.key)
        batch = replay.sample(sample_key, nets.config.batch_size)
        for name in ("observations", "next_observations"):
            batch[name] = normalize(batch[name], obs_stats)
        state, metrics = sac_update(nets, state.replace(key=key), batch)
    return state, replay, metrics


def _act(
    nets: SACNets, params: Any, key: jax.Array, observations: jax.Array, obs_stats: Any, *, random: bool
) -> tuple[jax.Array, jax.Array]:
    key, sample_key = jax.random.split(key)
    if random:
        shape = (observations.shape[0], nets.policy.num_actions)
        return jax.random.uniform(sample_key, shape, minval=-1.0, maxval=1.0), key
    actions, _ = nets.policy.act(
        {"observations": normalize(observations, obs_stats)}, role="policy", params=params, key=sample_key
    )
    return actions, key


def _act_eval(
    nets: SACNets, params: Any, key: jax.Array, observations: jax.Array, obs_stats: Any, *, deterministic: bool
) -> tuple[jax.Array, jax.Array]:
    key, sample_key = jax.random.split(key)
    inputs = {"observations": normalize(observations, obs_stats)}
    actions, outputs = nets.policy.act(inputs, role="policy", params=params, key=sample_key)
    return (outputs["mean_actions"] if deterministic else actions), key


def init_state(nets: SACNets, seed: int, initial_entropy_value: float) -> SACState:
    """Fresh parameters (the policy, two critics, targets equal to the critics) and optimizer states.

    Args:
        nets: Models and configuration.
        seed: Seed of the parameters and of the sampling key.
        initial_entropy_value: Initial alpha.

    Returns:
        The state.
    """
    keys = jax.random.split(jax_key(seed), 4)
    nets.policy.init_state_dict(role="policy", key=keys[0])
    num_obs, num_actions = nets.policy.num_observations, nets.policy.num_actions
    inputs = {"observations": jnp.zeros((1, num_obs)), "taken_actions": jnp.zeros((1, num_actions))}
    critics = []
    for key in keys[1:3]:
        nets.critic.init_state_dict(role="critic", inputs=inputs, key=key)
        critics.append(nets.critic.state_dict.params)  # type: ignore[union-attr]
    policy = nets.policy.state_dict.params  # type: ignore[union-attr]
    log_alpha = jnp.asarray(math.log(initial_entropy_value), jnp.float32)
    optimizers = nets_optimizers(nets.config)
    return SACState(
        policy=policy,
        critics=tuple(critics),
        target_critics=jax.tree_util.tree_map(jnp.copy, tuple(critics)),
        policy_opt=optimizers[0].init(policy),
        critic_opt=optimizers[1].init(tuple(critics)),
        entropy_opt=optimizers[2].init(log_alpha),
        log_entropy_coefficient=log_alpha,
        key=keys[3],
    )


class SAC:
    """SAC with an on-device replay buffer; one compiled call per environment step.

    Args:
        observation_space: Single-environment observation space.
        action_space: The normalised action Box.
        config: Hyperparameters.
        num_envs: Number of parallel environments.
        seed: Seed of the parameters, the batch sampling and the policy's noise.
    """

    def __init__(
        self, observation_space: Any, action_space: Any, *, config: SACConfig, num_envs: int, seed: int
    ) -> None:
        policy = GaussianMLPPolicy(
            observation_space,
            action_space,
            hidden_sizes=config.hidden_sizes,
            activation="relu",
            state_dependent_std=True,
            squash_actions=True,
        )
        critic = QMLP(observation_space, action_space, hidden_sizes=config.hidden_sizes)
        num_actions = policy.num_actions
        target_entropy = -float(num_actions) if config.target_entropy is None else config.target_entropy
        self.nets = SACNets(policy=policy, critic=critic, config=config, target_entropy=target_entropy)
        self.config, self.num_envs = config, num_envs
        self.learning = init_state(self.nets, seed, config.initial_entropy_value)
        shapes = {
            "observations": (policy.num_observations,),
            "actions": (num_actions,),
            "rewards": (1,),
            "next_observations": (policy.num_observations,),
            "terminated": (1,),
        }
        self.replay = Replay.create(config.memory_size, num_envs, shapes)
        self.obs_scaler = RunningMoments(policy.num_observations) if config.observation_normalization else None
        self.act_key = jax.random.fold_in(jax_key(seed), 1)
        self.eval_key = jax_key(EVAL_SEED)
        self.timesteps = 0
        self._pending: dict[str, np.ndarray] = {}
        self._observe = jax.jit(
            functools.partial(observe_step, self.nets), static_argnames="learn", donate_argnums=(0, 1)
        )
        self._act = jax.jit(functools.partial(_act, self.nets), static_argnames="random")
        self._act_eval = jax.jit(functools.partial(_act_eval, self.nets), static_argnames="deterministic")

    def _stats(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.obs_scaler is None else self.obs_scaler.mean_std(np.float32)

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Uniform random actions for the first ``random_timesteps`` steps, then policy samples.

        Args:
            observations: Shape (N, num_observations), float32.

        Returns:
            Actions (N, A) in [-1, 1].
        """
        random = self.timesteps < self.config.random_timesteps
        actions, self.act_key = self._act(
            self.learning.policy, self.act_key, observations, self._stats(), random=random
        )
        actions = np.asarray(actions)
        self._pending = {"observations": observations, "actions": actions}
        return actions

    def observe(self, step: ArrayStep) -> dict[str, float]:
        """Store the transition of the last :meth:`act` and take the gradient steps that are due.

        Args:
            step: What the environment returned for those actions.

        Returns:
            Metrics of the last gradient step, or an empty dict.
        """
        observations = self._pending.pop("observations")
        transition = {
            "observations": observations,
            "actions": self._pending.pop("actions"),
            "rewards": np.asarray(step.rewards * self.config.reward_scale, np.float32),
            "next_observations": step.final_observations,
            "terminated": step.terminated.astype(np.float32),
        }
        stats = self._stats()  # the torch agent normalises with the statistics before this step's update
        if self.obs_scaler is not None:
            self.obs_scaler.update(observations)
        self.timesteps += self.num_envs
        learn = self.timesteps >= self.config.learning_starts
        self.learning, self.replay, metrics = self._observe(self.learning, self.replay, transition, stats, learn=learn)
        if not learn:
            return {}
        return dict(zip(METRICS, np.asarray(metrics).tolist(), strict=True))

    def act_eval(
        self, observations: np.ndarray, states: list[Any], *, deterministic: bool = True
    ) -> tuple[np.ndarray, list[Any]]:
        """Act for evaluation: the squashed mean, or a sample.

        Args:
            observations: Shape (N, num_observations).
            states: Unused (SAC's policies are feed-forward); returned as is.
            deterministic: Take ``tanh(mean)`` instead of a sample.

        Returns:
            Actions (N, A) and ``states``.
        """
        params, stats = self.learning.policy, self._stats()
        actions, self.eval_key = self._act_eval(params, self.eval_key, observations, stats, deterministic=deterministic)
        return np.asarray(actions), states

    def eval_states(self, batch: int) -> list[Any]:
        """No hidden states: SAC's policies are feed-forward.

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
            Parameters, optimizer states, keys, normaliser, replay buffer and counters.
        """
        return {
            "learning": [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(self.learning.replace(key=None))],
            "key": key_array(self.learning.key),
            "act_key": key_array(self.act_key),
            "obs_scaler": self.obs_scaler.state() if self.obs_scaler else None,
            "replay": self.replay.state(),
            "timesteps": self.timesteps,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: As returned by :meth:`state` (arrays may come back as CPU tensors).
        """
        learning = restore_leaves(self.learning.replace(key=None), state["learning"])
        self.learning = learning.replace(key=jax_key(np.asarray(state["key"])))
        self.act_key = jax_key(np.asarray(state["act_key"]))
        if self.obs_scaler is not None:
            self.obs_scaler.load_state(state["obs_scaler"])
        self.replay = self.replay.load_state(state["replay"])
        self.timesteps = int(state["timesteps"])

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names (``gaussrl export``).

        Returns:
            The arrays; mean and std are those the policy's inputs are normalised with.
        """
        stats = self._stats()
        mean, std = (None, None) if stats is None else stats
        return PolicyArrays(params_to_torch(self.learning.policy), mean, std)
