"""The compiled trainer outside its compiled program: checkpoints, finiteness, Gymnasium evaluation, the cache.

A checkpoint holds every leaf of the carry (:class:`gaussrl.agents.jax.ppo_compiled.Carry`) as a
named tensor, in tree order (``"0000"``, ``"0001"``, ...); unsigned words (PRNG keys) are stored
reinterpreted as signed integers of the same width, which safetensors' torch side can hold.

Compiled programs are kept on disk by JAX's persistent compilation cache (:func:`use_compilation_cache`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import torch

from gaussrl.agents.jax import normalization, ppo_compiled, ppo_core
from gaussrl.trainer.resume import ResumeError

CACHE_ENV = "GAUSSRL_JAX_CACHE_DIR"
"""Directory of JAX's persistent compilation cache of compiled runs; set empty: no cache."""


def carry_to_tensors(carry: ppo_compiled.Carry) -> dict[str, torch.Tensor]:
    """The carry's leaves as named CPU tensors (copies).

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
        tensors[f"{index:04d}"] = torch.from_numpy(np.array(array))
    return tensors


def carry_from_tensors(template: ppo_compiled.Carry, tensors: dict[str, torch.Tensor]) -> ppo_compiled.Carry:
    """The carry :func:`carry_to_tensors` saved, shaped and typed as ``template``.

    Args:
        template: A carry of the run being resumed (its structure, shapes and dtypes).
        tensors: The checkpoint's tensors.

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
        array = tensors[f"{index:04d}"].numpy()
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


class GymnasiumPolicy:
    """The trained policy acting on Gymnasium observations (torch tensors), for the trainer's ``Evaluator``.

    Args:
        models: The policy and value models.
        params: The policy's parameters.
        obs_stats: The observation statistics.
        normalize: Whether the policy sees normalised observations.
    """

    def __init__(self, models: ppo_core.PPOModels, params: Any, obs_stats: Any, normalize: bool) -> None:
        key = jax.random.key(0, impl=ppo_compiled.key_impl(jax.local_device_count()))  # samples nothing

        def act(observations: jax.Array) -> jax.Array:
            x = normalization.normalize(obs_stats, observations) if normalize else observations
            _, outputs = models.policy.act({"observations": x}, role="policy", params=params, key=key)
            mean_actions: jax.Array = outputs["mean_actions"]
            return mean_actions

        self._act = jax.jit(act)

    def act_eval(
        self, observations: torch.Tensor, states: list[torch.Tensor], *, deterministic: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The mean actions (the compiled trainer evaluates deterministically only)."""
        if not deterministic:
            raise NotImplementedError("the compiled trainer evaluates on Gymnasium with mean actions only.")
        actions = np.asarray(self._act(observations.cpu().numpy()))
        return torch.from_numpy(actions.copy()), states

    def eval_states(self, batch: int) -> list[torch.Tensor]:
        """No hidden states (a feed-forward policy)."""
        del batch
        return []


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
