"""Sampling statistics: the right mean and spread, fresh and reproducible randomness."""

from __future__ import annotations

import numpy as np
import pytest

from tests.contract.helpers import box

N = 40_000
SIGMAS = np.array([0.05, 0.5, 1.0, 3.0], np.float32)


def _sample(backend, policy, seed=0, n=N, mean_value=0.7):
    backend.seed(policy, seed)
    mean = np.full((n, 4), mean_value, np.float32)
    actions, _ = backend.act(policy, mean, np.log(SIGMAS))
    return actions


def test_sample_mean_and_std_within_six_standard_errors(backend):
    actions = _sample(backend, backend.policy(box()))
    assert np.all(np.abs(actions.mean(0) - 0.7) < 6 * SIGMAS / np.sqrt(N))
    assert np.all(np.abs(actions.std(0) - SIGMAS) < 6 * SIGMAS / np.sqrt(2 * N))


def test_samples_are_standard_normal_in_shape(backend):
    z = (_sample(backend, backend.policy(box())) - 0.7) / SIGMAS
    # The fourth moment of a Normal is 3 sigma^4; its SE over N draws is sqrt(96 / N).
    assert abs(np.mean(z**4) - 3.0) < 6 * np.sqrt(96 / N)


def test_consecutive_calls_are_independent(backend):
    policy = backend.policy(box())
    first, second = _sample(backend, policy, n=20_000), None
    mean = np.full((20_000, 4), 0.7, np.float32)
    second, _ = backend.act(policy, mean, np.log(SIGMAS))
    z1, z2 = ((first - 0.7) / SIGMAS).ravel(), ((second - 0.7) / SIGMAS).ravel()
    assert not np.any(z1 == z2)
    assert abs(np.corrcoef(z1, z2)[0, 1]) < 6 / np.sqrt(z1.size)


def test_rows_are_not_repeated(backend):
    actions = _sample(backend, backend.policy(box()), n=4096)
    assert len(np.unique(actions, axis=0)) == 4096
    assert abs(np.corrcoef(actions[:-1, 0], actions[1:, 0])[0, 1]) < 6 / np.sqrt(4096)


def test_same_seed_same_samples(backend):
    policy = backend.policy(box())
    np.testing.assert_array_equal(_sample(backend, policy, seed=3, n=64), _sample(backend, policy, seed=3, n=64))
    assert not np.array_equal(_sample(backend, policy, seed=3, n=64), _sample(backend, policy, seed=4, n=64))


@pytest.mark.parametrize("state_dependent", [False, True])
def test_state_dependent_and_independent_scales(backend, state_dependent):
    policy = backend.policy(box(), state_dependent=state_dependent)
    backend.seed(policy, 1)
    log_std = np.log(np.broadcast_to(SIGMAS, (N, 4)) if state_dependent else SIGMAS).astype(np.float32)
    actions, _ = backend.act(policy, np.zeros((N, 4), np.float32), log_std)
    assert np.all(np.abs(actions.std(0) - SIGMAS) < 6 * SIGMAS / np.sqrt(2 * N))
