"""Tanh-squashed Gaussians: exact density, sampling, saturation and the entropy estimate."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from gymnasium import spaces

from tests.contract.helpers import draw

LOW, HIGH = np.array([-2.0, 0.0, -1.0]), np.array([3.0, 1.0, 1.0])
SPACE = spaces.Box(low=LOW.astype(np.float32), high=HIGH.astype(np.float32))
CENTER, SCALE = (HIGH + LOW) / 2, (HIGH - LOW) / 2
LOG_STD = np.array([-0.5, 0.0, 0.3], np.float32)


def _oracle_log_prob(actions, mean, log_std, center=CENTER, scale=SCALE):
    """Change of variables in float64, with the Jacobian written directly (not the stable form)."""
    y = (actions.astype(np.float64) - center) / scale
    u = np.arctanh(y)
    base = scipy.stats.norm.logpdf(u, mean.astype(np.float64), np.exp(log_std.astype(np.float64)))
    return base - np.log(scale * (1.0 - y * y))


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_taken_actions_log_prob_matches_change_of_variables(backend, reduction):
    mean = draw(0, n=128, a=3, scale=0.8)
    u = draw(1, n=128, a=3, scale=0.8)
    actions = (CENTER + SCALE * np.tanh(u.astype(np.float64))).astype(np.float32)
    policy = backend.policy(SPACE, squash_actions=True, reduction=reduction)
    _, outputs = backend.act(policy, mean, LOG_STD, taken_actions=actions)
    want = _oracle_log_prob(actions, mean, np.broadcast_to(LOG_STD, mean.shape))
    want = want.sum(-1, keepdims=True) if reduction == "sum" else want
    np.testing.assert_allclose(outputs["log_prob"], want, rtol=1e-4, atol=1e-4 * 3)


def test_fresh_samples_are_squashed_gaussians(backend):
    policy = backend.policy(SPACE, squash_actions=True, reduction="none")
    backend.seed(policy, 0)
    n = 40_000
    mean = np.tile(np.array([0.2, -0.3, 0.5], np.float32), (n, 1))
    actions, outputs = backend.act(policy, mean, LOG_STD)
    assert np.all(actions > LOW - 1e-6) and np.all(actions < HIGH + 1e-6)
    u = np.arctanh(np.clip((actions - CENTER) / SCALE, -1 + 1e-7, 1 - 1e-7))
    sigma = np.exp(LOG_STD.astype(np.float64))
    assert np.all(np.abs(u.mean(0) - mean[0]) < 6 * sigma / np.sqrt(n))
    assert np.all(np.abs(u.std(0) - sigma) < 6 * sigma / np.sqrt(2 * n) + 2e-3)
    np.testing.assert_allclose(outputs["mean_actions"][0], CENTER + SCALE * np.tanh(mean[0]), rtol=1e-5)
    inside = np.all(np.abs((actions - CENTER) / SCALE) < 0.999, axis=1)
    want = _oracle_log_prob(actions[inside], mean[inside], np.broadcast_to(LOG_STD, mean[inside].shape))
    np.testing.assert_allclose(outputs["log_prob"][inside], want, rtol=2e-3, atol=2e-3)


def test_squashed_density_integrates_to_one(backend):
    space = spaces.Box(low=np.float32(-2.0), high=np.float32(3.0), shape=(1,))
    policy = backend.policy(space, squash_actions=True, reduction="sum")
    grid = np.linspace(-2.0, 3.0, 200_001)[1:-1, None].astype(np.float32)
    mean = np.full_like(grid, 0.4)
    _, outputs = backend.act(policy, mean, np.array([-0.2], np.float32), taken_actions=grid)
    total = scipy.integrate.trapezoid(np.exp(outputs["log_prob"][:, 0].astype(np.float64)), grid[:, 0])
    assert abs(total - 1.0) < 1e-3


def test_plain_tanh_squash_onto_unit_interval(backend):
    space = spaces.Box(low=-np.inf, high=np.inf, shape=(3,), dtype=np.float32)
    policy = backend.policy(space, squash_actions="tanh", reduction="none")
    mean = draw(2, n=64, a=3, scale=0.5)
    actions, outputs = backend.act(policy, mean, LOG_STD, taken_actions=np.tanh(draw(3, n=64, a=3)))
    assert np.all(np.abs(actions) <= 1.0)
    want = _oracle_log_prob(np.tanh(draw(3, n=64, a=3)), mean, np.broadcast_to(LOG_STD, mean.shape), 0.0, 1.0)
    np.testing.assert_allclose(outputs["log_prob"], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pre_tanh", [-20.0, 20.0])
def test_saturated_actions_have_finite_log_prob_and_gradients(backend, pre_tanh):
    policy = backend.policy(SPACE, squash_actions=True)
    mean = np.full((8, 3), pre_tanh, np.float32)
    saturated = np.where(pre_tanh > 0, HIGH, LOW).astype(np.float32)[None].repeat(8, 0)
    _, outputs, grads = backend.grads(policy, mean, LOG_STD, "log_prob", taken_actions=saturated)
    assert np.all(np.isfinite(outputs["log_prob"]))
    assert np.all(np.isfinite(grads["mean"])) and np.all(np.isfinite(grads["log_std"]))
    _, outputs, grads = backend.grads(policy, mean, LOG_STD, "log_prob")
    assert np.all(np.isfinite(outputs["log_prob"]))
    assert np.all(np.isfinite(grads["mean"])) and np.all(np.isfinite(grads["log_std"]))


def test_entropy_estimate_is_unbiased(backend):
    space = spaces.Box(low=np.float32(-1.0), high=np.float32(1.0), shape=(1,))
    policy = backend.policy(space, squash_actions=True)
    backend.seed(policy, 0)
    n, m, s = 100_000, 0.3, 0.8
    backend.act(policy, np.full((n, 1), m, np.float32), np.array([np.log(s)], np.float32))
    estimates = backend.entropy(policy)[:, 0].astype(np.float64)

    def integrand(u):
        # -log p(a) under u ~ N(m, s), with a = tanh(u): entropy of the squashed policy.
        return -scipy.stats.norm.pdf(u, m, s) * (scipy.stats.norm.logpdf(u, m, s) - np.log1p(-(np.tanh(u) ** 2)))

    want = scipy.integrate.quad(integrand, m - 12 * s, m + 12 * s)[0]
    assert abs(estimates.mean() - want) < 6 * estimates.std() / np.sqrt(n)
