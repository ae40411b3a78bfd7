"""Spaces to sizes and bounds; option validation."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from gaussrl.core import GaussianSpec, action_bounds, space_shape, space_size


@pytest.mark.parametrize(
    "space, size",
    [
        (spaces.Box(-1, 1, (3, 4)), 12),
        (spaces.Discrete(5), 1),
        (spaces.MultiDiscrete([2, 3, 4]), 3),
        (spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Discrete(3)}), 3),
        (spaces.Tuple((spaces.Box(-1, 1, (2, 2)), spaces.MultiBinary(3))), 7),
        (7, 7),
        ((2, 3), 6),
        (None, 0),
    ],
)
def test_space_size(space, size):
    assert space_size(space) == size


def test_space_shape_and_bounds():
    box = spaces.Box(np.array([[-1, 0]], np.float32), np.array([[1, np.inf]], np.float32))
    assert space_shape(box) == (1, 2)
    bounds = action_bounds(box, "clip_actions=True")
    assert bounds.low.tolist() == [-1.0, 0.0] and bounds.high.tolist() == [1.0, np.inf] and not bounds.bounded


def test_bounds_need_a_box():
    with pytest.raises(TypeError, match=r"clip_actions=True needs the bounds of a gymnasium.spaces.Box"):
        action_bounds(spaces.Discrete(3), "clip_actions=True")


def test_unflattenable_space():
    with pytest.raises(TypeError, match=r"cannot flatten a space of type Text"):
        space_size(spaces.Text(5))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"clip_actions": 1}, r"clip_actions=1 must be True or False"),
        ({"squash_actions": "sigmoid"}, r"squash_actions='sigmoid' must be False, True or 'tanh'"),
        ({"min_log_std": float("nan")}, r"must be finite numbers"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises((TypeError, ValueError), match=message):
        GaussianSpec(**options)


def test_spec_is_frozen():
    spec = GaussianSpec()
    with pytest.raises(AttributeError):
        spec.reduction = "mean"
