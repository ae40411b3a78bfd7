"""Gymnasium spaces to sizes, shapes and action bounds.

A space may be a ``gymnasium.spaces`` object, an int (a flat vector of that size), a
sequence of ints (a shape) or ``None`` (no such input).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from gaussrl.core.errors import ModelDefinitionError

SpaceLike = spaces.Space[Any] | int | Sequence[int] | None


def space_size(space: SpaceLike) -> int:
    """Number of features a flattened sample of ``space`` has.

    Box: product of its shape; Discrete: 1 (the index); MultiDiscrete/MultiBinary: one per
    component; Dict and Tuple: the sum over their sub-spaces.

    Args:
        space: The space, an int size, a shape, or None.

    Returns:
        The flattened size; 0 for None.

    Raises:
        TypeError: For a space type with no flat size.
    """
    if space is None:
        return 0
    if isinstance(space, int):
        return space
    if not isinstance(space, spaces.Space):
        return math.prod(int(d) for d in space)
    if isinstance(space, spaces.Discrete):
        return 1
    if isinstance(space, spaces.Box | spaces.MultiDiscrete | spaces.MultiBinary):
        return math.prod(space.shape)
    if isinstance(space, spaces.Dict):
        return sum(space_size(sub) for sub in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return sum(space_size(sub) for sub in space.spaces)
    raise ModelDefinitionError(
        f"cannot flatten a space of type {type(space).__name__}; expected Box, Discrete, MultiDiscrete, "
        f"MultiBinary, Dict or Tuple (or an int size)."
    )


def space_shape(space: SpaceLike) -> tuple[int, ...]:
    """The shape of one unbatched sample of ``space``.

    Args:
        space: The space, an int size, a shape, or None.

    Returns:
        The space's own shape for Box/MultiDiscrete/MultiBinary and shapes given directly;
        ``(space_size(space),)`` for the rest; ``()`` for None.
    """
    if space is None:
        return ()
    if isinstance(space, int):
        return (space,)
    if not isinstance(space, spaces.Space):
        return tuple(int(d) for d in space)
    if isinstance(space, spaces.Box | spaces.MultiDiscrete | spaces.MultiBinary):
        return tuple(space.shape)
    return (space_size(space),)


@dataclass(frozen=True)
class ActionBounds:
    """Element-wise bounds of a flattened Box action space.

    Attributes:
        low: Shape (A,), float64; ``-inf`` where unbounded below.
        high: Shape (A,), float64; ``+inf`` where unbounded above.
    """

    low: np.ndarray[Any, np.dtype[np.float64]]
    high: np.ndarray[Any, np.dtype[np.float64]]

    @property
    def bounded(self) -> bool:
        """True when every dimension has two finite bounds."""
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))


def action_bounds(space: SpaceLike, purpose: str) -> ActionBounds:
    """Flattened bounds of a Box action space.

    Args:
        space: The action space.
        purpose: What needs the bounds (e.g. ``"clip_actions=True"``), for the error message.

    Returns:
        The bounds, flattened in C order.

    Raises:
        ModelDefinitionError: If ``space`` is not a ``gymnasium.spaces.Box`` (a ``TypeError``).
    """
    if not isinstance(space, spaces.Box):
        raise ModelDefinitionError(
            f"{purpose} needs the bounds of a gymnasium.spaces.Box action space, but the action space is "
            f"{space!r}. Use a Box action space, or switch {purpose.split('=', maxsplit=1)[0]} off."
        )
    low = np.asarray(space.low, dtype=np.float64).reshape(-1)
    high = np.asarray(space.high, dtype=np.float64).reshape(-1)
    return ActionBounds(low=low, high=high)


def unbounded(num_actions: int) -> ActionBounds:
    """Bounds that clip nothing, for models whose options need no bounds.

    Args:
        num_actions: Number of action dimensions.

    Returns:
        ``-inf`` / ``+inf`` bounds of shape (A,).
    """
    return ActionBounds(low=np.full(num_actions, -np.inf), high=np.full(num_actions, np.inf))
