"""Gradients against closed forms and float64 finite differences of the reference."""

from __future__ import annotations

import numpy as np
import pytest

from gaussrl.core import reference
from gaussrl.core.spec import GaussianSpec, make_plan
from tests.contract.helpers import box, draw


def _finite_difference(f, x, h=1e-6):
    """Central differences of sum(f(x)) in float64, one coordinate at a time."""
    x = x.astype(np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (np.sum(f(x + step)) - np.sum(f(x - step))) / (2 * h)
    return grad


@pytest.mark.parametrize("state_dependent", [False, True])
def test_log_prob_gradient_closed_form(backend, state_dependent):
    mean, x = draw(0, n=32), draw(1, n=32)
    log_std = draw(2, n=32, scale=0.3) if state_dependent else np.array([-0.3, 0.0, 0.2, 0.5], np.float32)
    policy = backend.policy(box(), state_dependent=state_dependent)
    _, _, grads = backend.grads(policy, mean, log_std, "log_prob", taken_actions=x)
    std = np.exp(np.broadcast_to(log_std, mean.shape).astype(np.float64))
    z = (x - mean) / std
    np.testing.assert_allclose(grads["mean"], z / std, rtol=1e-4, atol=1e-5)
    d_log_std = z * z - 1.0
    want = d_log_std if state_dependent else d_log_std.sum(0)
    np.testing.assert_allclose(grads["log_std"], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("reduction", ["sum", "mean", "prod"])
def test_log_prob_gradient_matches_finite_differences(backend, reduction):
    mean, x, log_std = draw(3, n=16), draw(4, n=16), draw(5, n=16, scale=0.3)
    policy = backend.policy(box(), state_dependent=True, reduction=reduction)
    _, _, grads = backend.grads(policy, mean, log_std, "log_prob", taken_actions=x)
    plan = make_plan(GaussianSpec(reduction=reduction), box(), 4)
    noise = np.zeros((16, 4))

    def log_prob(m=mean, s=log_std):
        return reference.act(m, s, plan, noise, taken_actions=x.astype(np.float64))[1]["log_prob"]

    np.testing.assert_allclose(grads["mean"], _finite_difference(lambda m: log_prob(m=m), mean), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        grads["log_std"], _finite_difference(lambda s: log_prob(s=s), log_std), rtol=1e-4, atol=1e-4
    )


def test_fresh_sample_log_prob_gradient(backend):
    mean, log_std = draw(6, n=32), np.array([-0.3, 0.0, 0.2, 0.5], np.float32)
    _, _, grads = backend.grads(backend.policy(box()), mean, log_std, "log_prob")
    # log N(mean + std * eps; mean, std) = -eps^2 / 2 - log_std - c: no dependence on the mean.
    np.testing.assert_allclose(grads["mean"], 0.0, atol=1e-5)
    np.testing.assert_allclose(grads["log_std"], np.full(4, -32.0), rtol=1e-5)


def test_reparameterized_actions_gradient(backend):
    mean, log_std = draw(7, n=32), np.array([-0.3, 0.0, 0.2, 0.5], np.float32)
    actions, _outputs, grads = backend.grads(backend.policy(box()), mean, log_std, "actions")
    np.testing.assert_allclose(grads["mean"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(grads["log_std"], (actions - mean).sum(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("state_dependent", [False, True])
def test_entropy_gradient(backend, state_dependent):
    mean = draw(8, n=32)
    log_std = draw(9, n=32, scale=0.3) if state_dependent else np.zeros(4, np.float32)
    _, _, grads = backend.grads(backend.policy(box(), state_dependent=state_dependent), mean, log_std, "entropy")
    np.testing.assert_allclose(grads["mean"], 0.0, atol=1e-7)
    np.testing.assert_allclose(grads["log_std"], np.ones((32, 4)) if state_dependent else np.full(4, 32.0))


@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize("scored", [False, True])
def test_gradient_of_a_combined_objective(backend, state_dependent, scored):
    """log-prob + entropy + actions from one act(): each output's gradient is added once, not broadcast."""
    mean, x = draw(10, n=32), draw(11, n=32)
    log_std = draw(12, n=32, scale=0.3) if state_dependent else np.array([-0.3, 0.0, 0.2, 0.5], np.float32)
    policy = backend.policy(box(), state_dependent=state_dependent)
    actions, _, grads = backend.grads(
        policy, mean, log_std, "log_prob+entropy+actions", taken_actions=x if scored else None
    )
    std = np.exp(np.broadcast_to(log_std, mean.shape).astype(np.float64))
    z = (x - mean) / std
    d_mean = (z / std if scored else 0.0) + 1.0
    d_log_std = (z * z - 1.0 if scored else -1.0) + (actions - mean) + 1.0
    np.testing.assert_allclose(grads["mean"], d_mean, rtol=1e-4, atol=1e-4)
    want = d_log_std if state_dependent else d_log_std.sum(0)
    np.testing.assert_allclose(grads["log_std"], want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("state_dependent", [False, True])
def test_clamped_log_std_passes_gradient_only_inside_the_bounds(backend, state_dependent):
    """clamp to [-20, 2]: dimensions below or above get zero gradient, the others the usual one."""
    mean, x = draw(13, n=16), draw(14, n=16)
    row = np.array([-25.0, -1.0, 0.5, 3.0], np.float32)
    log_std = np.tile(row, (16, 1)) if state_dependent else row
    _, _, grads = backend.grads(
        backend.policy(box(), state_dependent=state_dependent), mean, log_std, "log_prob+entropy", taken_actions=x
    )
    std = np.exp(np.clip(np.broadcast_to(log_std, mean.shape).astype(np.float64), -20.0, 2.0))
    z = (x - mean) / std
    inside = np.array([0.0, 1.0, 1.0, 0.0])
    want = (z * z - 1.0 + 1.0) * inside
    np.testing.assert_allclose(grads["log_std"], want if state_dependent else want.sum(0), rtol=1e-4, atol=1e-4)
    # With every value inside the bounds, the same objective's gradient is the unclamped closed form.
    inner = np.array([-1.0, -0.5, 0.5, 1.5], np.float32)
    log_std = np.tile(inner, (16, 1)) if state_dependent else inner
    _, _, grads = backend.grads(
        backend.policy(box(), state_dependent=state_dependent), mean, log_std, "log_prob+entropy", taken_actions=x
    )
    z = (x - mean) / np.exp(np.broadcast_to(log_std, mean.shape).astype(np.float64))
    np.testing.assert_allclose(grads["log_std"], z * z if state_dependent else (z * z).sum(0), rtol=1e-4, atol=1e-3)


def test_log_std_exactly_on_a_bound_gets_the_full_gradient(backend):
    """The clamp's gradient mask is the closed interval [-20, 2], as torch.clamp's (jnp.clip gives 1/2 there).

    A log-std parameter initialised on a bound must still learn in both directions.
    """
    mean, x = draw(15, n=16), draw(16, n=16)
    log_std = np.array([-20.0, -1.0, 0.5, 2.0], np.float32)
    _, _, grads = backend.grads(backend.policy(box()), mean, log_std, "log_prob", taken_actions=x)
    z = (x - mean) / np.exp(log_std.astype(np.float64))
    np.testing.assert_allclose(grads["log_std"], (z * z - 1.0).sum(0), rtol=1e-4, atol=1e-3)
