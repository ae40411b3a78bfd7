"""PPO compiled end to end on a JAX-native environment: rollout, GAE and update as one XLA program.

:func:`make_chunk` returns ``chunk(carry, evaluate) -> (carry, logs, returns)``, which runs ``updates`` PPO
iterations (``lax.scan``): each collects ``rollouts`` steps of every environment (the policy
samples, the environment steps and resets, observations are normalised and rewards bootstrapped
on truncation, as :class:`gaussrl.agents.torch.ppo.PPO` does) and then calls the update of
:mod:`gaussrl.agents.jax.ppo_core`; asked to, it ends with the deterministic evaluation (the
same program: train and evaluation share one compilation). The trainer calls ``chunk`` repeatedly
and logs, evaluates and checkpoints in between.

The environments are sharded over the devices of ``mesh`` (``shard_map``, data parallel): each
device steps ``num_envs / devices`` of them and computes its gradients, which are averaged
(``pmean``), as are the observation, value and advantage statistics, so every device holds the
same parameters. With one device this is the plain single-device program (no ``shard_map``).
Keys are Philox keys on one device (cheapest to compile) and threefry keys on several (Philox's
``mulhi`` does not lower inside ``shard_map`` in JAX 0.10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from gaussrl.agents.config import PPOConfig
from gaussrl.agents.jax import normalization, ppo_core
from gaussrl.agents.jax.normalization import RunningStats
from gaussrl.agents.jax.ppo_core import PPOModels, PPOState, Rollout
from gaussrl.envs.gymnax import VecEnv
from gaussrl.models.jax import StateDict
from gaussrl.models.jax.base import KEY_IMPL

AXIS = "devices"
"""The mesh axis the environments are sharded over."""
REPLICATED = PartitionSpec()  # type: ignore[no-untyped-call]
SHARDED_KEY_IMPL = "threefry2x32"
"""The PRNG of runs sharded over several devices."""


def key_impl(devices: int) -> str:
    """The PRNG of a run on ``devices`` devices (see the module docstring)."""
    return KEY_IMPL if devices == 1 else SHARDED_KEY_IMPL


class Carry(NamedTuple):
    """Everything a training run carries from one chunk to the next (all arrays: a checkpoint holds it)."""

    ppo: PPOState
    obs_stats: RunningStats
    env_state: Any
    observations: jax.Array
    """Raw observations of the next step, (N, O)."""
    key_data: jax.Array
    """Raw words of the run's PRNG key (of :func:`key_impl`)."""
    episode_returns: jax.Array
    """Undiscounted return of each environment's running episode, (N,)."""
    episode_lengths: jax.Array
    """Steps of each environment's running episode, (N,) int32."""


def init_carry(models: PPOModels, config: PPOConfig, env: VecEnv, seed: int, *, devices: int = 1) -> Carry:
    """The carry before the first update: the models' parameters and freshly reset environments.

    Args:
        models: Initialised policy and value models.
        config: Hyperparameters.
        env: The environments.
        seed: Seed of the environment resets, the sampling and the shuffling.
        devices: Devices the run is sharded over (they choose the PRNG).

    Returns:
        The carry.
    """
    key, reset_key = jax.random.split(jax.random.key(seed, impl=key_impl(devices)))
    observations, env_state = jax.jit(env.reset)(reset_key)
    return Carry(
        ppo=ppo_core.init_state(models, config),
        obs_stats=normalization.stats_init(env.num_observations),
        env_state=env_state,
        observations=observations,
        key_data=jax.random.key_data(key),
        episode_returns=jnp.zeros(env.num_envs, jnp.float32),
        episode_lengths=jnp.zeros(env.num_envs, jnp.int32),
    )


def init_run(models: PPOModels, config: PPOConfig, env: VecEnv, seed: int, *, devices: int = 1) -> Carry:
    """Initialise the models (policy from ``seed``, value from ``seed + 1``) and the carry, as one compiled call.

    Eagerly, every operation of the networks' initialisation and of :func:`init_carry` is a
    compilation of its own (about 2 s of a cold run, 0.5 s of cached ones); here they are one
    program, whose seed is an argument (one compilation for every seed). Afterwards the models
    hold the parameters, as after ``init_state_dict(role=..., key=...)``; their own sampling
    streams start from ``seed`` and ``seed + 1`` (the compiled path passes every key explicitly).

    Args:
        models: The policy and value models, constructed (their parameters are replaced).
        config: Hyperparameters.
        env: The environments.
        seed: The run's seed, below 2**32.
        devices: Devices the run is sharded over (they choose the PRNG).

    Returns:
        The carry.
    """

    def initial(seed_word: jax.Array) -> Carry:
        scratch = PPOModels(models.policy.clone(), models.value.clone())  # stateful init, on copies under jit
        scratch.policy.init_state_dict(role="policy", key=jax.random.key(seed_word, impl=KEY_IMPL))
        scratch.value.init_state_dict(role="value", key=jax.random.key(seed_word + 1, impl=KEY_IMPL))
        return init_carry(scratch, config, env, seed_word, devices=devices)  # type: ignore[arg-type]

    carry: Carry = jax.jit(initial)(np.uint32(seed))
    for model, role, offset in ((models.policy, "policy", 0), (models.value, "value", 1)):
        model.state_dict = StateDict(params=carry.ppo.params[role])
        model.seed(seed + offset)
    return carry


def carry_specs(carry: Carry) -> Any:
    """Partition specs of a carry: per-environment leaves split over :data:`AXIS`, the rest replicated."""
    split, whole = PartitionSpec(AXIS), REPLICATED  # type: ignore[no-untyped-call]
    return Carry._make(
        [
            jax.tree_util.tree_map(lambda _: whole, carry.ppo),
            jax.tree_util.tree_map(lambda _: whole, carry.obs_stats),
            jax.tree_util.tree_map(lambda _: split, carry.env_state),
            split,
            whole,
            split,
            split,
        ]
    )


class _Context(NamedTuple):
    models: PPOModels
    config: PPOConfig
    env: VecEnv
    axis_name: str | None
    """:data:`AXIS` inside ``shard_map``, None on one device."""
    key_impl: str


def _local_key(ctx: _Context, key: jax.Array) -> jax.Array:
    """A key of this device's own: ``key`` folded with the device index (``key`` itself on one device)."""
    return key if ctx.axis_name is None else jax.random.fold_in(key, jax.lax.axis_index(ctx.axis_name))


def _psum(ctx: _Context, x: jax.Array) -> jax.Array:
    return x if ctx.axis_name is None else jax.lax.psum(x, ctx.axis_name)  # type: ignore[no-untyped-call]


def _rollout_step(
    ctx: _Context, params: ppo_core.Params, value_stats: RunningStats
) -> Callable[[tuple[Any, ...], jax.Array], tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """One environment step of every local environment: act, step, bootstrap, count episodes."""
    models, config, env, axis_name, _ = ctx

    def final_values(observations: jax.Array, obs_stats: RunningStats) -> jax.Array:
        x = normalization.normalize(obs_stats, observations) if config.observation_normalization else observations
        values, _ = models.value.act({"observations": x}, role="value", params=params["value"])
        return normalization.denormalize(value_stats, values) if config.value_normalization else values

    def step(carry: tuple[Any, ...], key: jax.Array) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        obs_stats, env_state, observations, returns, lengths = carry
        act_key, env_key = jax.random.split(key)
        x = observations
        if config.observation_normalization:
            obs_stats = normalization.stats_update(obs_stats, observations, axis_name)
            x = normalization.normalize(obs_stats, observations)
        actions, outputs = models.policy.act({"observations": x}, role="policy", params=params["policy"], key=act_key)
        result, env_state = env.step(env_key, env_state, actions)
        rewards = result.rewards * config.reward_scale if config.reward_scale != 1.0 else result.rewards
        if config.time_limit_bootstrap:
            values = jax.lax.cond(
                jnp.any(result.truncated),
                lambda: final_values(result.final_observations, obs_stats),
                lambda: jnp.zeros_like(rewards),
            )
            rewards = ppo_core.bootstrap_rewards(
                rewards, values, result.terminated, result.truncated, discount_factor=config.discount_factor
            )
        dones = result.terminated | result.truncated
        returns, lengths = returns + result.rewards[:, 0], lengths + 1
        ended = dones[:, 0]
        episode = (jnp.sum(ended), jnp.sum(jnp.where(ended, returns, 0.0)), jnp.sum(jnp.where(ended, lengths, 0)))
        returns, lengths = jnp.where(ended, 0.0, returns), jnp.where(ended, 0, lengths)
        stored = Rollout(
            observations=x,
            actions=actions,
            log_prob=outputs["log_prob"],
            mean_actions=outputs["mean_actions"],
            log_std=jnp.broadcast_to(outputs["log_std"], actions.shape),
            rewards=rewards,
            dones=dones,
        )
        return (obs_stats, env_state, result.observations, returns, lengths), (stored, episode)

    return step


def _iteration(ctx: _Context, total_updates: int | None) -> Callable[[Carry, Any], tuple[Carry, dict[str, Any]]]:
    """One PPO iteration on the local environments: a rollout, then the update."""
    models, config, _, axis_name, impl = ctx
    update = ppo_core.make_update(models, config, total_updates=total_updates, axis_name=axis_name)

    def iteration(carry: Carry, _: Any) -> tuple[Carry, dict[str, Any]]:
        key, rollout_key, update_key = jax.random.split(jax.random.wrap_key_data(carry.key_data, impl=impl), 3)
        local_key = _local_key(ctx, rollout_key)
        step = _rollout_step(ctx, carry.ppo.params, carry.ppo.value_stats)
        inner = (carry.obs_stats, carry.env_state, carry.observations, carry.episode_returns, carry.episode_lengths)
        inner, (rollout, episodes) = jax.lax.scan(step, inner, jax.random.split(local_key, config.rollouts))
        obs_stats, env_state, observations, returns, lengths = inner
        x = normalization.normalize(obs_stats, observations) if config.observation_normalization else observations
        ppo, metrics = update(carry.ppo, rollout, x, _local_key(ctx, update_key))
        count, total_return, total_length = (_psum(ctx, jnp.sum(e)) for e in episodes)
        logs = {**metrics, "episodes": count, "episode_return_sum": total_return, "episode_length_sum": total_length}
        new = Carry(ppo, obs_stats, env_state, observations, jax.random.key_data(key), returns, lengths)
        return new, logs

    return iteration


def make_chunk(
    models: PPOModels,
    config: PPOConfig,
    env: VecEnv,
    mesh: Mesh,
    *,
    updates: int,
    total_updates: int | None = None,
    example: Carry,
    eval_episodes: int,
    eval_seed: int,
) -> Callable[[Carry, bool], tuple[Carry, dict[str, jax.Array], jax.Array]]:
    """``chunk(carry, evaluate) -> (carry, logs, returns)``: ``updates`` PPO iterations as one compiled call.

    With ``evaluate`` true the chunk ends with the deterministic evaluation of :func:`make_evaluate`
    (``eval_episodes`` episodes from ``eval_seed``'s states) of its final parameters; else ``returns``
    are zeros and the evaluation does not run (``lax.cond``). Training and evaluation are one program,
    compiled once, for every seed (the evaluation's key is an argument).

    Args:
        models: The policy and value models.
        config: Hyperparameters.
        env: The environments of one device (``num_envs / devices`` copies).
        mesh: One-axis mesh (:data:`AXIS`) of the devices to shard the environments over.
        updates: PPO iterations per call.
        total_updates: Updates of the run (the "linear" learning-rate schedule).
        example: A carry of the run (for its partition specs).
        eval_episodes: Episodes of the evaluation.
        eval_seed: Seed of the evaluation's initial states.

    Returns:
        The jitted chunk; ``logs`` holds one value per iteration (shape (updates,)) of the update's
        metrics and ``episodes``, ``episode_return_sum`` and ``episode_length_sum`` (episodes finished);
        ``returns`` has shape (eval_episodes,).
    """
    devices = mesh.devices.size
    axis_name = AXIS if devices > 1 else None
    iteration = _iteration(_Context(models, config, env, axis_name, key_impl(devices)), total_updates)
    evaluate = evaluation(models, config, env, episodes=eval_episodes, devices=devices)

    def chunk(carry: Carry, key_data: jax.Array, run_eval: jax.Array) -> tuple[Carry, Any, jax.Array]:
        carry, logs = jax.lax.scan(iteration, carry, None, length=updates)
        returns = jax.lax.cond(
            run_eval,
            lambda: evaluate(carry.ppo.params, carry.obs_stats, key_data),
            lambda: jnp.zeros(eval_episodes, jnp.float32),
        )
        return carry, logs, returns

    if axis_name is None:
        compiled = jax.jit(chunk, donate_argnums=0)
    else:
        specs = carry_specs(example)
        sharded = jax.shard_map(
            chunk,
            mesh=mesh,
            in_specs=(specs, REPLICATED, REPLICATED),
            out_specs=(specs, REPLICATED, REPLICATED),
            check_vma=False,
        )
        compiled = jax.jit(sharded, donate_argnums=0)
    key_data = jax.random.key_data(jax.random.key(eval_seed, impl=key_impl(devices)))
    return lambda carry, run_eval: compiled(carry, key_data, np.bool_(run_eval))


def evaluation(
    models: PPOModels, config: PPOConfig, env: VecEnv, *, episodes: int, devices: int = 1
) -> Callable[[ppo_core.Params, RunningStats, jax.Array], jax.Array]:
    """``evaluate(params, obs_stats, key_data) -> returns (episodes,)``: deterministic (mean-action) episodes.

    A pure function, to jit alone (:func:`make_evaluate`) or inside a chunk (:func:`make_chunk`).
    The initial states come from the key (words of :func:`key_impl`); episodes run until every
    one has ended (at most ``max_steps_in_episode`` steps).

    Args:
        models: The policy and value models.
        config: Hyperparameters (for observation normalisation).
        env: A template environment (its copy count is replaced by ``episodes``).
        episodes: Number of episodes, one per environment copy.
        devices: Devices the parameters live on (they choose the PRNG).

    Returns:
        The function.
    """
    eval_env = VecEnv(**{**vars(env), "num_envs": episodes})
    steps = int(getattr(env.params, "max_steps_in_episode", 1000))
    impl = key_impl(devices)

    def evaluate(params: ppo_core.Params, obs_stats: RunningStats, key_data: jax.Array) -> jax.Array:
        key, reset_key = jax.random.split(jax.random.wrap_key_data(key_data, impl=impl))
        observations, state = eval_env.reset(reset_key)

        def step(carry: tuple[Any, ...], step_key: jax.Array) -> tuple[tuple[Any, ...], None]:
            state, observations, returns, active = carry
            x = normalization.normalize(obs_stats, observations) if config.observation_normalization else observations
            _, outputs = models.policy.act({"observations": x}, role="policy", params=params["policy"], key=step_key)
            result, state = eval_env.step(step_key, state, outputs["mean_actions"])
            returns = returns + jnp.where(active, result.rewards[:, 0], 0.0)
            active = active & ~(result.terminated | result.truncated)[:, 0]
            return (state, result.observations, returns, active), None

        initial = (state, observations, jnp.zeros(episodes, jnp.float32), jnp.ones(episodes, bool))
        (_, _, returns, _), _ = jax.lax.scan(step, initial, jax.random.split(key, steps))
        return returns

    return evaluate


def make_evaluate(
    models: PPOModels, config: PPOConfig, env: VecEnv, *, episodes: int, seed: int, devices: int = 1
) -> Callable[[ppo_core.Params, RunningStats], jax.Array]:
    """``evaluate(params, obs_stats) -> returns (episodes,)``: :func:`evaluation` compiled alone.

    Every call replays the same initial states (a fixed key from ``seed``).

    Args:
        models: The policy and value models.
        config: Hyperparameters (for observation normalisation).
        env: A template environment (its copy count is replaced by ``episodes``).
        episodes: Number of episodes, one per environment copy.
        seed: Seed of the initial states.
        devices: Devices the parameters live on (they choose the PRNG).

    Returns:
        The evaluation (compiled once for every seed: the key is an argument of the program).
    """
    compiled = jax.jit(evaluation(models, config, env, episodes=episodes, devices=devices))
    key_data = jax.random.key_data(jax.random.key(seed, impl=key_impl(devices)))
    return lambda params, obs_stats: compiled(params, obs_stats, key_data)
