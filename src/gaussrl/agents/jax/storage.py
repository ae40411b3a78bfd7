"""Storage of the JAX agents: the on-device replay buffer, keys and normalisation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.core.running import NORMALIZED_CLIP
from gaussrl.models.jax.base import KEY_IMPL

EVAL_SEED = 1_000_003
"""Seed of the evaluation key stream, restarted by each evaluation (the trainer's evaluation seed offset)."""


def jax_key(seed: int | np.ndarray | jax.Array) -> jax.Array:
    """A typed PRNG key (:data:`~gaussrl.models.jax.base.KEY_IMPL`) from an int seed or its raw words.

    Args:
        seed: An int, or raw key words as :func:`key_array` returns them.

    Returns:
        The key.
    """
    if isinstance(seed, int):
        return jax.random.key(seed, impl=KEY_IMPL)
    key: jax.Array = jax.random.wrap_key_data(jnp.asarray(seed, jnp.uint32), impl=KEY_IMPL)
    return key


def key_array(key: jax.Array) -> np.ndarray:
    """The raw words of a typed key, as int64 (checkpoint formats store signed integers everywhere).

    Args:
        key: A typed key.

    Returns:
        Its words.
    """
    return np.asarray(jax.random.key_data(key)).astype(np.int64)


def normalize(x: jax.Array, stats: tuple[jax.Array, jax.Array] | None) -> jax.Array:
    """``(x - mean) / std`` clipped to +-5 (the torch scaler's formula), or ``x`` without statistics.

    Args:
        x: Shape (..., size).
        stats: Mean and std, (size,) each, or None.

    Returns:
        Same shape.
    """
    if stats is None:
        return x
    normalized: jax.Array = jnp.clip((x - stats[0]) / stats[1], -NORMALIZED_CLIP, NORMALIZED_CLIP)
    return normalized


class Replay(flax.struct.PyTreeNode):  # type: ignore[no-untyped-call]
    """A ring buffer of named arrays (capacity, num_envs, ...) on the device, used inside compiled calls.

    Attributes:
        data: Name to array.
        position: Next row to write, 0-d int32.
        size: Rows written (at most the capacity), 0-d int32.
    """

    data: dict[str, jax.Array]
    position: jax.Array
    size: jax.Array

    @classmethod
    def create(cls, capacity: int, num_envs: int, shapes: Mapping[str, tuple[int, ...]]) -> Replay:
        """An empty float32 buffer.

        Args:
            capacity: Rows.
            num_envs: Environments per row.
            shapes: Name to trailing shape.

        Returns:
            The buffer.
        """
        data = {name: jnp.zeros((capacity, num_envs, *shape), jnp.float32) for name, shape in shapes.items()}
        return cls(data=data, position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))

    @property
    def capacity(self) -> int:
        """Rows of the buffer."""
        return int(next(iter(self.data.values())).shape[0])

    def add(self, values: dict[str, jax.Array]) -> Replay:
        """Write one row per name and advance (wrapping around).

        Args:
            values: Name to (num_envs, ...).

        Returns:
            The new buffer.
        """
        data = {name: array.at[self.position].set(values[name]) for name, array in self.data.items()}
        capacity = self.capacity
        return Replay(data=data, position=(self.position + 1) % capacity, size=jnp.minimum(self.size + 1, capacity))

    def sample(self, key: jax.Array, batch_size: int) -> dict[str, jax.Array]:
        """Uniform random transitions (with replacement) from the rows written, flattened row-major.

        Args:
            key: PRNG key.
            batch_size: Number of transitions.

        Returns:
            Name to (batch_size, ...).
        """
        first = next(iter(self.data.values()))
        flat = jax.random.randint(key, (batch_size,), 0, self.size * first.shape[1])
        return {name: array.reshape(-1, *array.shape[2:])[flat] for name, array in self.data.items()}

    def state(self) -> dict[str, Any]:
        """The written rows, position and fill flag (the torch buffer's layout), for a checkpoint.

        Returns:
            Nested dict of NumPy arrays and ints.
        """
        rows = int(self.size)
        return {
            "tensors": {name: np.asarray(array[:rows]) for name, array in self.data.items()},
            "position": int(self.position),
            "filled": rows == self.capacity,
        }

    def load_state(self, state: dict[str, Any]) -> Replay:
        """The buffer with what :meth:`state` returned written back.

        Args:
            state: As returned by :meth:`state`.

        Returns:
            The restored buffer.

        Raises:
            ValueError: If the shapes differ from this buffer's.
        """
        data = {}
        for name, array in self.data.items():
            saved = np.asarray(state["tensors"][name])
            if saved.shape[1:] != array.shape[1:] or saved.shape[0] > array.shape[0]:
                raise ValueError(
                    f"checkpoint buffer {name!r} has shape {saved.shape}; this run's is {tuple(array.shape)} "
                    f"(was the run started with other memory_size/num_envs?)."
                )
            data[name] = array.at[: saved.shape[0]].set(saved)
        rows = self.capacity if state["filled"] else int(state["position"])
        return Replay(
            data=data, position=jnp.asarray(int(state["position"]), jnp.int32), size=jnp.asarray(rows, jnp.int32)
        )


def restore_leaves(template: Any, leaves: list[Any]) -> Any:
    """``template``'s pytree with its leaves replaced by checkpointed ones (arrays or CPU tensors).

    Args:
        template: The current pytree (its structure and dtypes are kept).
        leaves: ``jax.tree_util.tree_leaves`` of a tree of the same structure, as saved.

    Returns:
        The restored pytree.

    Raises:
        ValueError: If the number or the shapes of the leaves differ.
    """
    current, treedef = jax.tree_util.tree_flatten(template)
    if len(current) != len(leaves):
        raise ValueError(f"the checkpoint holds {len(leaves)} arrays here; this agent has {len(current)}.")
    restored = []
    for want, saved in zip(current, leaves, strict=True):
        array = np.asarray(saved)
        if array.shape != np.shape(want):
            raise ValueError(f"checkpoint array of shape {array.shape} does not match this agent's {np.shape(want)}.")
        restored.append(jnp.asarray(array, dtype=jnp.asarray(want).dtype))
    return jax.tree_util.tree_unflatten(treedef, restored)
