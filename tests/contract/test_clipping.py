"""Clipping of actions, mean actions and log-std, on both bounds."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from tests.contract.helpers import ATOL, RTOL, box, draw, scipy_log_prob

LOW, HIGH = np.array([-1.0, -2.0, 0.0, -0.5]), np.array([1.0, 0.5, 3.0, 0.5])
SPACE = spaces.Box(low=LOW.astype(np.float32), high=HIGH.astype(np.float32))


def test_clip_actions_holds_both_bounds_and_scores_the_clipped_action(backend):
    policy = backend.policy(SPACE, clip_actions=True, reduction="none")
    mean = draw(0, scale=3.0)
    actions, outputs = backend.act(policy, mean, np.full(4, 0.5, np.float32))
    assert np.all(actions >= LOW.astype(np.float32)) and np.all(actions <= HIGH.astype(np.float32))
    assert np.any(actions == LOW.astype(np.float32)) and np.any(actions == HIGH.astype(np.float32))
    np.testing.assert_allclose(
        outputs["log_prob"], scipy_log_prob(actions, mean, np.full((256, 4), 0.5)), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_array_equal(outputs["mean_actions"], mean)


def test_clip_mean_actions_clips_before_sampling(backend):
    policy = backend.policy(SPACE, clip_mean_actions=True, reduction="none")
    mean = draw(1, scale=3.0)
    x = draw(2)
    _, outputs = backend.act(policy, mean, np.full(4, -0.5, np.float32), taken_actions=x)
    clipped = np.clip(mean, LOW, HIGH).astype(np.float32)
    np.testing.assert_array_equal(outputs["mean_actions"], clipped)
    np.testing.assert_allclose(
        outputs["log_prob"], scipy_log_prob(x, clipped, np.full((256, 4), -0.5)), rtol=RTOL, atol=ATOL
    )


def test_clip_mean_actions_moves_the_samples(backend):
    policy = backend.policy(SPACE, clip_mean_actions=True)
    backend.seed(policy, 0)
    actions, _ = backend.act(policy, np.full((20_000, 4), 10.0, np.float32), np.full(4, -1.0, np.float32))
    np.testing.assert_allclose(actions.mean(0), HIGH, atol=6 * np.exp(-1.0) / np.sqrt(20_000))


@pytest.mark.parametrize("value, expected", [(-30.0, -20.0), (5.0, 2.0), (0.5, 0.5)])
def test_clip_log_std_on_both_bounds(backend, value, expected):
    policy = backend.policy(box(), reduction="none")
    x = draw(3)
    _, outputs = backend.act(policy, draw(4), np.full(4, value, np.float32), taken_actions=x)
    np.testing.assert_allclose(np.broadcast_to(outputs["log_std"], (256, 4)), expected, rtol=1e-6)


def test_custom_log_std_bounds_set_the_spread(backend):
    policy = backend.policy(box(), min_log_std=-1.0, max_log_std=-0.5)
    backend.seed(policy, 0)
    actions, outputs = backend.act(policy, np.zeros((20_000, 4), np.float32), np.array([-3, -0.7, 0, 3], np.float32))
    want = np.exp([-1.0, -0.7, -0.5, -0.5])
    assert np.all(np.abs(actions.std(0) - want) < 6 * want / np.sqrt(40_000))
    np.testing.assert_allclose(np.ravel(outputs["log_std"])[:4], [-1.0, -0.7, -0.5, -0.5], rtol=1e-6)


def test_clip_log_std_false_leaves_it(backend):
    policy = backend.policy(box(), clip_log_std=False)
    _, outputs = backend.act(policy, draw(5), np.full(4, 5.0, np.float32))
    np.testing.assert_allclose(np.ravel(outputs["log_std"])[:4], 5.0)


def test_infinite_bounds_clip_nothing(backend):
    half = spaces.Box(low=np.array([-1.0, -np.inf], np.float32), high=np.array([np.inf, np.inf], np.float32))
    policy = backend.policy(half, clip_actions=True, clip_mean_actions=True)
    mean = draw(6, a=2, scale=5.0)
    actions, outputs = backend.act(policy, mean, np.zeros(2, np.float32))
    assert actions[:, 0].min() == -1.0 and actions[:, 1].min() < -5.0 and actions.max() > 5.0
    np.testing.assert_array_equal(outputs["mean_actions"][:, 1], mean[:, 1])


def test_deterministic_mixin_clips_when_asked(backend):
    x = draw(7, scale=3.0)
    np.testing.assert_array_equal(backend.deterministic(SPACE, x, clip_actions=False), x)
    np.testing.assert_array_equal(
        backend.deterministic(SPACE, x, clip_actions=True), np.clip(x, LOW, HIGH).astype(np.float32)
    )
