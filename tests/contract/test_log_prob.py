"""Log-density, entropy and output shapes against scipy and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from tests.contract.helpers import REDUCTIONS, RTOL, atol_for, box, draw, reduce, scipy_log_prob


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("state_dependent", [False, True])
def test_log_prob_of_taken_actions_matches_scipy(backend, reduction, state_dependent):
    mean, x = draw(0), draw(1, scale=1.5)
    log_std = draw(2, scale=0.5) if state_dependent else np.array([-0.5, 0.0, 0.3, 1.0], np.float32)
    policy = backend.policy(box(), state_dependent=state_dependent, reduction=reduction, clip_log_std=False)
    _, outputs = backend.act(policy, mean, log_std, taken_actions=x)
    want = reduce(scipy_log_prob(x, mean, np.broadcast_to(log_std, mean.shape)), reduction)
    assert outputs["log_prob"].shape == ((256, 4) if reduction == "none" else (256, 1))
    np.testing.assert_allclose(outputs["log_prob"], want, rtol=RTOL, atol=atol_for(reduction, 4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_prob_of_fresh_sample_scores_the_returned_actions(backend, reduction):
    mean = draw(3)
    log_std = np.array([-1.0, -0.2, 0.4, 0.9], np.float32)
    policy = backend.policy(box(), reduction=reduction)
    actions, outputs = backend.act(policy, mean, log_std)
    assert actions.shape == (256, 4)
    want = reduce(scipy_log_prob(actions, mean, np.broadcast_to(log_std, mean.shape)), reduction)
    np.testing.assert_allclose(outputs["log_prob"], want, rtol=RTOL, atol=atol_for(reduction, 4))


def test_outputs_hold_mean_and_log_std(backend):
    mean, log_std = draw(4), np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    _, outputs = backend.act(backend.policy(box()), mean, log_std)
    np.testing.assert_allclose(outputs["mean_actions"], mean, rtol=0, atol=0)
    np.testing.assert_allclose(np.broadcast_to(outputs["log_std"], mean.shape), np.broadcast_to(log_std, mean.shape))


@pytest.mark.parametrize("state_dependent", [False, True])
def test_entropy_matches_scipy(backend, state_dependent):
    mean = draw(5)
    log_std = draw(6, scale=0.5) if state_dependent else np.array([-2.0, -0.5, 0.0, 1.5], np.float32)
    policy = backend.policy(box(), state_dependent=state_dependent)
    backend.act(policy, mean, log_std)
    entropy = backend.entropy(policy)
    want = scipy.stats.norm.entropy(scale=np.exp(np.broadcast_to(log_std, mean.shape).astype(np.float64)))
    assert entropy.shape == (256, 4)
    np.testing.assert_allclose(entropy, want, rtol=RTOL, atol=RTOL)


def test_entropy_follows_the_latest_call(backend):
    policy = backend.policy(box(), state_dependent=True)
    for call in range(100):
        log_std = np.full((8, 4), -1.0 + 0.01 * call, np.float32)
        backend.act(policy, draw(call, n=8), log_std)
    np.testing.assert_allclose(backend.entropy(policy), 0.5 + 0.5 * np.log(2 * np.pi) + log_std, rtol=RTOL)


def test_role_reaches_compute(backend):
    policy = backend.policy(box())
    backend.act(policy, draw(7, n=2), np.zeros(4, np.float32), role="policy")
    if not hasattr(policy, "roles"):
        pytest.skip(f"{backend.name}: the test policy cannot record roles")
    assert policy.roles[-1] == "policy"


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_float64_matches_reference_to_1e_12(backend, reduction):
    rng = np.random.default_rng(8)
    mean, x, log_std = rng.normal(size=(64, 4)), rng.normal(size=(64, 4)), rng.normal(size=(64, 4)) * 0.3
    policy = backend.policy(box(), state_dependent=True, dtype="float64", reduction=reduction)
    _, outputs = backend.act(policy, mean, log_std, taken_actions=x)
    assert outputs["log_prob"].dtype == np.float64
    want = reduce(scipy.stats.norm.logpdf(x, mean, np.exp(log_std)), reduction)
    np.testing.assert_allclose(outputs["log_prob"], want, rtol=1e-12, atol=1e-12)
