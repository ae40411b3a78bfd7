"""Pure PPO for JAX (Schulman et al., 2017): GAE, the clipped loss, and the whole update as one compiled call.

Everything here is a pure function over pytrees; no state lives between calls. It computes
exactly what :class:`gaussrl.agents.torch.ppo.PPO` computes for a feed-forward policy, with the
same :class:`~gaussrl.agents.config.PPOConfig` fields.

Interface:
    - ``PPOModels(policy, value)``: a ``GaussianMixin`` policy (reduction "sum") and a
      ``DeterministicMixin`` value from :mod:`gaussrl.models.jax`, both initialised. Only their
      ``act(inputs, role=, params=, key=)`` is called, so any feed-forward architecture works.
    - ``Params``: ``{"policy": policy params, "value": value params}`` (the models' ``state_dict.params``).
    - ``Rollout``: what the rollout stored, arrays of shape (T, N, ...): normalised observations,
      the sampled actions, their log-prob, the policy's mean and log-std at sampling time, rewards
      (already scaled, and bootstrapped on truncation: ``r + gamma V(final obs)``) and dones
      (terminated or truncated).
    - :mod:`gaussrl.agents.jax.normalization`: ``RunningStats`` and the running normaliser
      (skrl's RunningStandardScaler) for observations and values.
    - :func:`bootstrap_rewards`: the truncation bootstrap a rollout adds to its rewards.
    - ``PPOState``: params, Adam state, learning rate, value statistics and update count;
      :func:`init_state` makes the first one.
    - :func:`compute_gae`, :func:`ppo_loss`: the two formulas.
    - :func:`make_update` returns ``update(state, rollout, next_observations, key) -> (state, metrics)``:
      values, GAE, value normalisation, advantage standardisation and every epoch and minibatch
      (``lax.scan``), with gradient clipping, Adam and the configured learning-rate schedule.
      ``next_observations`` are the normalised observations after the rollout's last step (N, O);
      ``metrics`` holds scalar ``policy_loss``, ``value_loss``, ``entropy``, ``kl``,
      ``learning_rate`` and ``policy_std``, as the torch agent's update returns.
    - With ``axis_name`` (inside ``shard_map``), each device holds a slice of the environments:
      gradients, advantage and value statistics and metrics are averaged over that axis.

Minibatches: each epoch shuffles the T * N samples with :func:`epoch_permutations` and cuts them
as ``torch.chunk`` does (``ceil(T N / M)`` samples each, the last shorter; the short one is padded
and masked, so every minibatch has one shape).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gaussrl.agents.config import PPOConfig
from gaussrl.agents.jax.normalization import (
    RunningStats,
    denormalize,
    moments,
    normalize,
    pmean,
    stats_init,
    stats_update,
)
from gaussrl.core.errors import ConfigError
from gaussrl.models.jax import gaussian_entropy, gaussian_kl
from gaussrl.models.jax.base import KEY_IMPL
from gaussrl.models.jax.functional import clamp

Params = dict[str, Any]
KL_FACTOR = 2.0
LR_FACTOR = 1.5
LR_BOUNDS = (1e-6, 1e-2)
"""skrl's KLAdaptiveLR constants (as the torch agent's): /1.5 above 2x the target KL, x1.5 below 1/2x."""
ADVANTAGE_EPS = 1e-8
GRAD_NORM_EPS = 1e-6
"""As ``torch.nn.utils.clip_grad_norm_``: the clip coefficient is ``max_norm / (norm + 1e-6)``."""
LOSS_KEY = jax.random.key(0, impl=KEY_IMPL)
"""The key ``act`` gets when it scores taken actions (it samples nothing from it)."""
ADAM = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)
"""torch.optim.Adam's defaults; the learning rate is applied after it, so it can change every epoch."""


class PPOModels(NamedTuple):
    """The policy and value models (static: hashed by identity under ``jit``)."""

    policy: Any
    """A ``GaussianMixin`` model of :mod:`gaussrl.models.jax` (its ``act`` takes ``params=`` and ``key=``)."""
    value: Any
    """A ``DeterministicMixin`` model of :mod:`gaussrl.models.jax`."""


class Rollout(NamedTuple):
    """One rollout, every field (T, N, ...)."""

    observations: jax.Array
    """Normalised observations, (T, N, O)."""
    actions: jax.Array
    """Sampled (unclipped) actions, (T, N, A)."""
    log_prob: jax.Array
    """Their log-density at sampling time, (T, N, 1)."""
    mean_actions: jax.Array
    """The policy's mean at sampling time, (T, N, A)."""
    log_std: jax.Array
    """The policy's log-std at sampling time, (T, N, A)."""
    rewards: jax.Array
    """Scaled rewards with the truncation bootstrap added, (T, N, 1)."""
    dones: jax.Array
    """Terminated or truncated after the step, (T, N, 1) bool."""


class PPOState(NamedTuple):
    """Everything the update changes."""

    params: Params
    opt_state: Any
    learning_rate: jax.Array
    value_stats: RunningStats
    updates: jax.Array


class Samples(NamedTuple):
    """A minibatch (or the flat rollout): (B, ...) arrays; ``weights`` is 1 for real samples, 0 for padding."""

    observations: jax.Array
    actions: jax.Array
    log_prob: jax.Array
    mean_actions: jax.Array
    log_std: jax.Array
    values: jax.Array
    returns: jax.Array
    advantages: jax.Array
    weights: jax.Array


def init_state(models: PPOModels, config: PPOConfig) -> PPOState:
    """The state before the first update, from the models' current parameters."""
    params = {
        "policy": models.policy.ready_state_dict("init_state").params,
        "value": models.value.ready_state_dict("init_state").params,
    }
    return PPOState(
        params=params,
        opt_state=ADAM.init(params),
        learning_rate=jnp.asarray(config.learning_rate, jnp.float32),
        value_stats=stats_init(1),
        updates=jnp.zeros((), jnp.int32),
    )


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_values: jax.Array,
    *,
    discount_factor: float,
    gae_lambda: float,
) -> jax.Array:
    """Generalized advantage estimation (Schulman et al., 2016, eq. 16), backwards over time.

    ``delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t`` and ``A_t = delta_t + gamma lambda (1 - d_t) A_{t+1}``.
    Truncated episodes count as done; their bootstrap value is already in ``r_t``.

    Args:
        rewards: Shape (T, N, 1).
        values: V(s_t), shape (T, N, 1).
        dones: Episode ended after step t, shape (T, N, 1), bool or float.
        last_values: V(s_T) of the observation after the rollout, shape (N, 1).
        discount_factor: gamma.
        gae_lambda: lambda.

    Returns:
        Advantages, shape (T, N, 1).
    """
    not_done = 1.0 - dones.astype(values.dtype)
    next_values = jnp.concatenate([values[1:], last_values[None]])
    deltas = rewards + discount_factor * not_done * next_values - values
    decays = discount_factor * gae_lambda * not_done

    def step(advantage: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, decay = inputs
        advantage = delta + decay * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(step, jnp.zeros_like(last_values), (deltas, decays), reverse=True)
    return advantages


def bootstrap_rewards(
    rewards: jax.Array, final_values: jax.Array, terminated: jax.Array, truncated: jax.Array, *, discount_factor: float
) -> jax.Array:
    """``r + gamma V(final observation)`` where an episode was truncated and not terminated, else ``r``.

    A time limit is not a terminal state (Pardo et al., 2018): the cut-off return is estimated by the value.

    Args:
        rewards: Shape (N, 1).
        final_values: V of the observations the episodes ended on (denormalised), shape (N, 1).
        terminated: Shape (N, 1), bool.
        truncated: Shape (N, 1), bool.
        discount_factor: gamma.

    Returns:
        Shape (N, 1).
    """
    bootstrap = (truncated & ~terminated).astype(rewards.dtype)
    return rewards + discount_factor * final_values * bootstrap


def ppo_loss(
    params: Params, batch: Samples, models: PPOModels, config: PPOConfig, key: jax.Array | None = None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The clipped PPO objective on one minibatch, as the torch agent's ``_loss``.

    ``-E[min(A r, A clip(r, 1-eps, 1+eps))] - c_H H + c_V E[(V - R)^2]`` with ``r = exp(log pi - log pi_old)``;
    with ``clip_predicted_values`` the prediction is first clipped to ``V_old +- value_clip``.

    Args:
        params: ``{"policy", "value"}`` parameters.
        batch: The minibatch; padded samples have weight 0.
        models: The policy and value models.
        config: Hyperparameters.
        key: A key for ``act``, which samples nothing from it (it scores the taken actions);
            :data:`LOSS_KEY` if None. Inside ``shard_map`` pass a threefry key: Philox does not lower there.

    Returns:
        The loss and ``{"policy_loss", "value_loss", "entropy", "kl"}`` (KL of the rollout policy to
        the current one, without gradient).
    """
    weights = batch.weights
    total = jnp.sum(weights)

    def mean(x: jax.Array) -> jax.Array:
        return jnp.sum(x * weights) / total

    inputs = {"observations": batch.observations, "taken_actions": batch.actions}
    # The taken actions are scored, so the key never samples; a constant one leaves the model's stream alone.
    _, outputs = models.policy.act(inputs, role="policy", params=params["policy"], key=LOSS_KEY if key is None else key)
    new_mean = outputs["mean_actions"]
    new_log_std = jnp.broadcast_to(outputs["log_std"], new_mean.shape)
    kl = mean(gaussian_kl(batch.mean_actions, batch.log_std, new_mean, new_log_std, "sum"))
    entropy = mean(jnp.sum(gaussian_entropy(new_log_std), axis=-1, keepdims=True))
    ratio = jnp.exp(outputs["log_prob"] - batch.log_prob)
    clipped = clamp(ratio, 1.0 - config.ratio_clip, 1.0 + config.ratio_clip)
    policy_loss = -mean(jnp.minimum(batch.advantages * ratio, batch.advantages * clipped))
    predicted, _ = models.value.act({"observations": batch.observations}, role="value", params=params["value"])
    if config.clip_predicted_values:
        predicted = batch.values + clamp(predicted - batch.values, -config.value_clip, config.value_clip)
    value_loss = mean(jnp.square(predicted - batch.returns))
    loss = policy_loss + config.value_loss_scale * value_loss
    if config.entropy_loss_scale > 0:
        loss = loss - config.entropy_loss_scale * entropy
    metrics = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "kl": jax.lax.stop_gradient(kl),
    }
    return loss, jax.tree_util.tree_map(jax.lax.stop_gradient, metrics)


def clip_grad_norm(grads: Any, max_norm: float) -> Any:
    """Scale ``grads`` so that their global 2-norm is at most ``max_norm`` (torch's ``clip_grad_norm_``)."""
    norm = optax.tree.norm(grads)
    coefficient = jnp.minimum(max_norm / (norm + GRAD_NORM_EPS), 1.0)
    return jax.tree_util.tree_map(lambda g: g * coefficient, grads)


def epoch_permutations(key: jax.Array, epochs: int, count: int) -> jax.Array:
    """The sample order of each epoch of one update, shape (epochs, count): a stable argsort of random bits.

    Cheaper to compile than ``jax.random.permutation`` (a few rounds of sorting); with a Philox key
    (:data:`gaussrl.models.jax.base.KEY_IMPL`) it adds a fraction of a second to the update's compilation.
    """
    return jnp.argsort(jax.random.bits(key, (epochs, count)), axis=-1)


def _minibatches(samples: Samples, order: jax.Array, mini_batches: int) -> Samples:
    """Shuffled samples as (num_batches, size, ...), cut as ``torch.chunk`` cuts, the short tail masked."""
    count = order.shape[0]
    size = -(-count // mini_batches)
    num_batches = -(-count // size)
    padded = jnp.concatenate([order, jnp.zeros(num_batches * size - count, order.dtype)])
    weights = (jnp.arange(num_batches * size) < count).astype(jnp.float32).reshape(num_batches, size, 1)
    batches: Samples = jax.tree_util.tree_map(lambda x: x[padded].reshape(num_batches, size, *x.shape[1:]), samples)
    return batches._replace(weights=weights * batches.weights)


def _targets(
    params: Params,
    rollout: Rollout,
    next_observations: jax.Array,
    value_stats: RunningStats,
    *,
    models: PPOModels,
    config: PPOConfig,
    axis_name: str | None,
) -> tuple[Samples, RunningStats]:
    """Values, GAE, returns, value normalisation and advantage standardisation; the rollout flattened."""
    steps, envs = rollout.rewards.shape[:2]

    def values_of(observations: jax.Array) -> jax.Array:
        values, _ = models.value.act({"observations": observations}, role="value", params=params["value"])
        return denormalize(value_stats, values) if config.value_normalization else values

    values = values_of(rollout.observations.reshape(steps * envs, -1)).reshape(steps, envs, 1)
    advantages = compute_gae(
        rollout.rewards,
        values,
        rollout.dones,
        values_of(next_observations),
        discount_factor=config.discount_factor,
        gae_lambda=config.gae_lambda,
    )
    returns = advantages + values
    if config.value_normalization:
        value_stats = stats_update(value_stats, returns, axis_name)
        returns, values = normalize(value_stats, returns), normalize(value_stats, values)
    mean, var, count = moments(advantages.reshape(-1, 1), axis_name)
    std = jnp.sqrt(var * count / (count - 1.0))  # Bessel's correction, as torch.Tensor.std
    advantages = (advantages - mean) / (std + ADVANTAGE_EPS)

    def flat(x: jax.Array) -> jax.Array:
        return x.reshape(steps * envs, *x.shape[2:])

    samples = Samples(
        observations=flat(rollout.observations),
        actions=flat(rollout.actions),
        log_prob=flat(rollout.log_prob),
        mean_actions=flat(rollout.mean_actions),
        log_std=flat(rollout.log_std),
        values=flat(values),
        returns=flat(returns),
        advantages=flat(advantages),
        weights=jnp.ones((steps * envs, 1), jnp.float32),
    )
    return samples, value_stats


def _adapt_learning_rate(learning_rate: jax.Array, kl: jax.Array, target: float) -> jax.Array:
    """The KLAdaptiveLR step of skrl: shrink above 2x the target KL, grow below half of it."""
    lower = jnp.maximum(learning_rate / LR_FACTOR, LR_BOUNDS[0])
    higher = jnp.minimum(learning_rate * LR_FACTOR, LR_BOUNDS[1])
    return jnp.where(kl > target * KL_FACTOR, lower, jnp.where(kl < target / KL_FACTOR, higher, learning_rate))


def _epoch_step(
    models: PPOModels, config: PPOConfig, axis_name: str | None, key: jax.Array
) -> Callable[[tuple[Any, ...], Samples], tuple[tuple[Any, ...], tuple[dict[str, jax.Array], jax.Array]]]:
    """One minibatch: loss, gradient (averaged over devices), clipping and Adam; a no-op once stopped."""
    grad = jax.value_and_grad(ppo_loss, has_aux=True)

    def step(carry: tuple[Any, ...], batch: Samples) -> tuple[tuple[Any, ...], tuple[dict[str, jax.Array], jax.Array]]:
        params, opt_state, learning_rate, stopped = carry
        (_, metrics), grads = grad(params, batch, models, config, key)
        grads = pmean(grads, axis_name)
        metrics = pmean(metrics, axis_name)
        if config.grad_norm_clip > 0:
            grads = clip_grad_norm(grads, config.grad_norm_clip)
        direction, new_opt_state = ADAM.update(grads, opt_state)
        new_params = jax.tree_util.tree_map(lambda p, d: p - learning_rate * d, params, direction)
        ran = jnp.logical_not(stopped)
        if config.kl_threshold:
            keep = _keep_where(stopped)
            new_params, new_opt_state = keep(params, new_params), keep(opt_state, new_opt_state)
            stopped = stopped | (metrics["kl"] > config.kl_threshold)
        return (new_params, new_opt_state, learning_rate, stopped), (metrics, ran)

    return step


def _keep_where(stopped: jax.Array) -> Callable[[Any, Any], Any]:
    """``select(old, new)``: ``old`` where ``stopped``, else ``new``, leaf by leaf."""
    return lambda old, new: jax.tree_util.tree_map(lambda a, b: jnp.where(stopped, a, b), old, new)


def _weighted_mean(values: jax.Array, ran: jax.Array) -> jax.Array:
    ran = ran.astype(values.dtype)
    return jnp.sum(values * ran) / jnp.maximum(jnp.sum(ran), 1.0)


def make_update(
    models: PPOModels, config: PPOConfig, *, total_updates: int | None = None, axis_name: str | None = None
) -> Callable[[PPOState, Rollout, jax.Array, jax.Array], tuple[PPOState, dict[str, jax.Array]]]:
    """The PPO update as one function, jitted unless ``axis_name`` is given (the caller compiles it then).

    Args:
        models: The policy and value models.
        config: Hyperparameters (``learning_rate_scheduler`` as in the torch agent).
        total_updates: Updates of the run; needed by the "linear" schedule.
        axis_name: Device axis to average over (inside ``shard_map``), or None.

    Returns:
        ``update(state, rollout, next_observations, key) -> (state, metrics)``.

    Raises:
        ConfigError: If the "linear" schedule lacks ``total_updates``.
    """
    if config.learning_rate_scheduler == "linear" and not total_updates:
        raise ConfigError("learning_rate_scheduler='linear' needs total_updates (the number of PPO updates).")

    def update(
        state: PPOState, rollout: Rollout, next_observations: jax.Array, key: jax.Array
    ) -> tuple[PPOState, dict[str, jax.Array]]:
        learning_rate = state.learning_rate
        if config.learning_rate_scheduler == "linear":
            total = float(total_updates or 1)
            fraction = jnp.maximum(1.0 - state.updates / total, 1.0 / total)
            learning_rate = jnp.asarray(config.learning_rate * fraction, jnp.float32)
        samples, value_stats = _targets(
            state.params,
            rollout,
            next_observations,
            state.value_stats,
            models=models,
            config=config,
            axis_name=axis_name,
        )
        orders = epoch_permutations(key, config.learning_epochs, samples.weights.shape[0])
        step = _epoch_step(models, config, axis_name, key)

        def epoch(carry: tuple[Any, ...], order: jax.Array) -> tuple[tuple[Any, ...], Any]:
            carry, (metrics, ran) = jax.lax.scan(step, carry, _minibatches(samples, order, config.mini_batches))
            if config.learning_rate_scheduler == "kl_adaptive":
                params, opt_state, learning_rate, stopped = carry
                adapted = _adapt_learning_rate(
                    learning_rate, _weighted_mean(metrics["kl"], ran), config.kl_adaptive_threshold
                )
                carry = (params, opt_state, jnp.where(jnp.any(ran), adapted, learning_rate), stopped)
            return carry, (metrics, ran)

        initial = (state.params, state.opt_state, learning_rate, jnp.zeros((), bool))
        (params, opt_state, learning_rate, _), (metrics, ran) = jax.lax.scan(epoch, initial, orders)
        result = {name: _weighted_mean(value, ran) for name, value in metrics.items()}
        result["learning_rate"] = learning_rate
        result["policy_std"] = pmean(jnp.mean(jnp.exp(rollout.log_std[-1])), axis_name)
        new_state = PPOState(params, opt_state, learning_rate, value_stats, state.updates + 1)
        return new_state, result

    return update if axis_name is not None else jax.jit(update)
