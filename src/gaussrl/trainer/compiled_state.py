"""The compiled trainer outside its compiled program: checkpoints, finiteness, Gymnasium evaluation, the cache.

A checkpoint holds every leaf of the carry (:class:`gaussrl.agents.jax.ppo_compiled.Carry`) as a
named array, in tree order (``"0000"``, ``"0001"``, ...); unsigned words (PRNG keys) are stored
reinterpreted as signed integers of the same width, which safetensors' torch side can hold.
Nothing here imports torch: checkpoints are written from NumPy, and the evaluation on
Gymnasium's environment steps it directly, as the Gymnasium trainer's evaluation does.

Compiled programs are kept on disk by JAX's persistent compilation cache (:func:`use_compilation_cache`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gaussrl.agents.jax import normalization, ppo_compiled, ppo_core
from gaussrl.core.errors import EnvError
from gaussrl.envs.step import episode_seed
from gaussrl.trainer.resume import ResumeError

CACHE_ENV = "GAUSSRL_JAX_CACHE_DIR"
"""Directory of JAX's persistent compilation cache of compiled runs; set empty: no cache."""


def carry_to_tensors(carry: ppo_compiled.Carry) -> dict[str, np.ndarray]:
    """The carry's leaves as named NumPy arrays (copies).

    Args:
        carry: The carry.

    Returns:
        ``{"0000": tensor, ...}`` in tree order.
    """
    tensors = {}
    for index, leaf in enumerate(jax.tree_util.tree_leaves(jax.device_get(carry))):
        array = np.asarray(leaf)
        if array.dtype.kind == "u":
            array = array.view(array.dtype.str.replace("u", "i"))
        tensors[f"{index:04d}"] = np.array(array)
    return tensors


def carry_from_tensors(template: ppo_compiled.Carry, tensors: dict[str, Any]) -> ppo_compiled.Carry:
    """The carry :func:`carry_to_tensors` saved, shaped and typed as ``template``.

    Args:
        template: A carry of the run being resumed (its structure, shapes and dtypes).
        tensors: The checkpoint's tensors (CPU torch tensors or NumPy arrays).

    Returns:
        The carry, as NumPy arrays.

    Raises:
        ResumeError: If the checkpoint's arrays do not fit the template (a run with other options).
    """
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(tensors) != len(leaves):
        raise ResumeError(
            f"the checkpoint holds {len(tensors)} arrays; this run has {len(leaves)}. Resume with the options the "
            f"run was started with."
        )
    restored = []
    for index, leaf in enumerate(leaves):
        array = np.asarray(tensors[f"{index:04d}"])
        want = np.asarray(leaf)
        if array.shape != want.shape:
            raise ResumeError(f"checkpoint array {index} has shape {array.shape}; this run's is {want.shape}.")
        restored.append(array.view(want.dtype) if want.dtype.kind == "u" else array.astype(want.dtype))
    carry: ppo_compiled.Carry = jax.tree_util.tree_unflatten(treedef, restored)
    return carry


def first_nonfinite_leaf(tree: Any) -> str | None:
    """The path of the first floating-point leaf of ``tree`` that holds NaN or infinity.

    Args:
        tree: A pytree of arrays (e.g. the carry's PPO state).

    Returns:
        e.g. ``"ppo.params['policy']['params']['Dense_0']['kernel']"``, or None when every leaf is finite.
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(jax.device_get(tree)):
        array = np.asarray(leaf)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            return jax.tree_util.keystr(path, simple=True, separator=".")
    return None


def policy_mean_actions(models: ppo_core.PPOModels, params: Any, obs_stats: Any, normalize: bool) -> Callable[..., Any]:
    """The trained policy's mean actions, compiled: ``act(observations (N, O)) -> (N, A)`` in ``[-1, 1]`` units.

    Args:
        models: The policy and value models.
        params: The policy's parameters.
        obs_stats: The observation statistics.
        normalize: Whether the policy sees normalised observations.

    Returns:
        The compiled function.
    """
    key = jax.random.key(0, impl=ppo_compiled.key_impl(jax.local_device_count()))  # samples nothing

    def act(observations: jax.Array) -> jax.Array:
        x = normalization.normalize(obs_stats, observations) if normalize else observations
        _, outputs = models.policy.act({"observations": x}, role="policy", params=params, key=key)
        mean_actions: jax.Array = outputs["mean_actions"]
        return mean_actions

    return jax.jit(act)


def gymnasium_returns(env_id: str, act: Callable[..., Any], episodes: int, seed: int) -> np.ndarray:
    """Deterministic episodes on Gymnasium's own environment, one per copy, each to its end.

    The episodes start where the Gymnasium trainer's evaluation starts them
    (:class:`gaussrl.trainer.evaluate.Evaluator`: copy ``i`` reset with ``episode_seed(seed, i, 0)``),
    and the actions are clipped to ``[-1, 1]`` and rescaled onto the Box as there.

    Args:
        env_id: A Gymnasium id with a bounded Box action space.
        act: Mean actions of a batch of observations, ``(episodes, O) float32 -> (episodes, A)``.
        episodes: Number of episodes.
        seed: Seed of the initial states (the run's seed plus the evaluation offset).

    Returns:
        The episode returns, shape (episodes,), summed in float64 from float32 rewards.
    """
    import gymnasium  # noqa: PLC0415 (only this evaluation steps Gymnasium)

    envs = [gymnasium.make(env_id) for _ in range(episodes)]
    try:
        space = envs[0].action_space
        if not isinstance(space, gymnasium.spaces.Box):
            raise EnvError(f"Gymnasium's {env_id!r} has action space {type(space).__name__}; expected a Box.")
        low, high = (np.asarray(bound, np.float64).reshape(-1) for bound in (space.low, space.high))
        center, scale = (high + low) / 2.0, (high - low) / 2.0
        observations = np.stack([env.reset(seed=episode_seed(seed, i, 0))[0] for i, env in enumerate(envs)])
        returns, active = np.zeros(episodes), np.ones(episodes, bool)
        while active.any():
            actions = np.clip(np.asarray(act(observations.astype(np.float32))), -1.0, 1.0) * scale + center
            for i in np.flatnonzero(active):
                shaped = actions[i].reshape(space.shape).astype(space.dtype)
                observation, reward, terminated, truncated, _ = envs[i].step(shaped)
                observations[i] = observation
                returns[i] += np.float32(reward)
                active[i] = not (terminated or truncated)
    finally:
        for env in envs:
            env.close()
    return returns


def compilation_cache_dir() -> Path | None:
    """Where compiled runs keep their compiled programs: ``$GAUSSRL_JAX_CACHE_DIR``, else the user's cache dir.

    Returns:
        ``$GAUSSRL_JAX_CACHE_DIR`` if set (None if set empty: no cache), else
        ``$XDG_CACHE_HOME/gaussrl/jax`` (``~/.cache/gaussrl/jax``).
    """
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value) if value else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gaussrl" / "jax"


def use_compilation_cache() -> None:
    """Turn on JAX's persistent compilation cache in :func:`compilation_cache_dir`, unless JAX already has one.

    A second run of the same program (same options and JAX version: JAX keys each entry on the
    program and the compiler) loads the compiled chunk and evaluation instead of compiling them,
    which takes most of a short run's time. Every compilation is cached, however short, since the
    model initialisation's many small ones add up. A cache directory the user gave JAX
    (``JAX_COMPILATION_CACHE_DIR``) is left as it is.
    """
    directory = compilation_cache_dir()
    if directory is None or getattr(jax.config, "jax_compilation_cache_dir", None):
        return
    jax.config.update("jax_compilation_cache_dir", str(directory))  # type: ignore[no-untyped-call]
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # type: ignore[no-untyped-call]
