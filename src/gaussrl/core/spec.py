"""Validated options of the mixins, shared by every backend.

A backend builds one :class:`GaussianSpec` from the mixin's keyword arguments, then one
:class:`GaussianPlan` from the spec and the action space, and converts the plan's NumPy
arrays to its own arrays once, in ``__init__``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from gaussrl.core.spaces import ActionBounds, SpaceLike, action_bounds, unbounded

Reduction = Literal["mean", "sum", "prod", "none"]
Squash = Literal["none", "box", "tanh"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}={value!r} must be True or False.")


@dataclass(frozen=True, kw_only=True)
class GaussianSpec:
    """Options of ``GaussianMixin``, validated on construction.

    Attributes:
        clip_actions: Clip sampled actions to the Box bounds (the log-prob scores the clipped action).
        clip_mean_actions: Clip the mean to the Box bounds before sampling.
        clip_log_std: Clamp the log-std to ``[min_log_std, max_log_std]``.
        min_log_std: Lower log-std bound when ``clip_log_std``.
        max_log_std: Upper log-std bound when ``clip_log_std``.
        reduction: How the per-dimension log-density is reduced over the action axis.
        role: Role played by the model.
        squash_actions: ``True`` squashes samples with tanh onto the Box bounds, ``"tanh"`` onto
            (-1, 1) whatever the bounds; both report the exact log-density of the squashed action.
        check_finite: Raise when ``compute()`` returns NaN or infinity.
    """

    clip_actions: bool = False
    clip_mean_actions: bool = False
    clip_log_std: bool = True
    min_log_std: float = -20.0
    max_log_std: float = 2.0
    reduction: Reduction = "sum"
    role: str = ""
    squash_actions: bool | Literal["tanh"] = False
    check_finite: bool = False

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction={self.reduction!r} is not one of 'mean', 'sum', 'prod', 'none'. Use 'sum' for the "
                f"joint log-density of the action vector (the usual choice), or 'none' for one per dimension."
            )
        for name in ("clip_actions", "clip_mean_actions", "clip_log_std", "check_finite"):
            _check_bool(name, getattr(self, name))
        if self.squash_actions not in (True, False, "tanh"):
            raise ValueError(f"squash_actions={self.squash_actions!r} must be False, True or 'tanh'.")
        if not (math.isfinite(self.min_log_std) and math.isfinite(self.max_log_std)):
            raise ValueError(
                f"min_log_std={self.min_log_std} and max_log_std={self.max_log_std} must be finite numbers; "
                f"to leave the log-std unclamped, pass clip_log_std=False."
            )
        if self.clip_log_std and not self.min_log_std < self.max_log_std:
            raise ValueError(
                f"min_log_std={self.min_log_std} must be below max_log_std={self.max_log_std}; "
                f"the defaults are -20 and 2."
            )
        if self.squash_actions and (self.clip_actions or self.clip_mean_actions):
            raise ValueError(
                "clip_actions and clip_mean_actions cannot be combined with squash_actions: the tanh squash "
                "already keeps actions inside the bounds. Pass clip_actions=False, clip_mean_actions=False."
            )


@dataclass(frozen=True, kw_only=True)
class DeterministicSpec:
    """Options of ``DeterministicMixin``.

    Attributes:
        clip_actions: Clip the output to the Box bounds.
        role: Role played by the model.
    """

    clip_actions: bool = False
    role: str = ""

    def __post_init__(self) -> None:
        _check_bool("clip_actions", self.clip_actions)


@dataclass(frozen=True, eq=False)
class GaussianPlan:
    """Everything ``act()`` needs that does not change between calls, as float64 NumPy.

    Attributes:
        spec: The validated options.
        num_actions: Number of action dimensions A.
        clip: Bounds for ``clip_actions`` / ``clip_mean_actions`` (infinite where nothing is clipped).
        squash: ``"none"``, ``"box"`` (tanh rescaled onto the bounds) or ``"tanh"`` (onto (-1, 1)).
        squash_center: Shape (A,); the affine map after tanh is ``center + scale * tanh(u)``.
        squash_scale: Shape (A,).
        min_log_std: Lower clamp of the log-std before the dtype floor (``-inf`` when not clipping).
        max_log_std: Upper clamp of the log-std (``+inf`` when not clipping).
    """

    spec: GaussianSpec
    num_actions: int
    clip: ActionBounds
    squash: Squash
    squash_center: np.ndarray[Any, np.dtype[np.float64]]
    squash_scale: np.ndarray[Any, np.dtype[np.float64]]
    min_log_std: float
    max_log_std: float

    @property
    def log_scale_sum(self) -> float:
        """Sum of ``log(scale)`` over the action dimensions: the rescaling term of the squash Jacobian."""
        return float(np.sum(np.log(self.squash_scale)))


def _squash_map(
    spec: GaussianSpec, action_space: SpaceLike, num_actions: int
) -> tuple[Squash, np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    ones, zeros = np.ones(num_actions), np.zeros(num_actions)
    if spec.squash_actions == "tanh":
        return "tanh", zeros, ones
    if not spec.squash_actions:
        return "none", zeros, ones
    bounds = action_bounds(action_space, "squash_actions=True")
    if not bounds.bounded:
        raise ValueError(
            f"squash_actions=True maps actions onto the Box bounds, but the action space has infinite bounds "
            f"(low={bounds.low.tolist()}, high={bounds.high.tolist()}). Pass squash_actions='tanh' to squash "
            f"onto (-1, 1) instead."
        )
    return "box", (bounds.high + bounds.low) / 2.0, (bounds.high - bounds.low) / 2.0


def make_plan(spec: GaussianSpec, action_space: SpaceLike, num_actions: int) -> GaussianPlan:
    """Resolve ``spec`` against an action space.

    Args:
        spec: The validated options.
        action_space: The model's action space.
        num_actions: Its flattened size.

    Returns:
        The plan every backend converts to its own arrays.

    Raises:
        TypeError: If clipping or box squashing is asked for on an action space that is not a Box.
        ValueError: If box squashing is asked for on a Box with an infinite bound.
    """
    if spec.clip_actions or spec.clip_mean_actions:
        purpose = "clip_actions=True" if spec.clip_actions else "clip_mean_actions=True"
        clip = action_bounds(action_space, purpose)
    else:
        clip = unbounded(num_actions)
    squash, center, scale = _squash_map(spec, action_space, num_actions)
    lo, hi = (spec.min_log_std, spec.max_log_std) if spec.clip_log_std else (-math.inf, math.inf)
    return GaussianPlan(spec, num_actions, clip, squash, center, scale, float(lo), float(hi))
